#!/usr/bin/env bash
# A throw-away "cluster" of network namespaces on one Linux machine, for the multi-host test
# (Tests/PipelineTests/MultiHostNetnsTests.swift) and for trying the recipes by hand.
#
#   deploy/test/netns-lab.sh NODES        (root; needs iproute2)
#
# Creates namespaces ditnt-<pid>-<rand>-n0 .. -n<NODES-1>, each with one veth (eth0) cabled to
# a Linux bridge that lives in its own namespace (...-br), node i at 10.213.0.<i+1>/24. Nothing
# is added to the machine's own network namespace: no address, no route, no interface.
# Prints "lab <prefix>" and then "ready", then waits until its standard input closes (the caller
# exited or died) or it gets SIGTERM/SIGINT/SIGHUP; then every process left in the lab's
# namespaces is killed and the namespaces (and with them the veths and the bridge) are deleted.
# It also removes the leftovers of earlier labs whose script is no longer alive.
#
#   ip netns exec <prefix>-n0 dit-coordinator serve --bind tcp://10.213.0.1:5555 ...
#   ip -n <prefix>-br link set p1 down      # cut node 1's cable (at the bridge port)
set -euo pipefail

nodes=${1:?usage: netns-lab.sh NODES}
case $nodes in (*[!0-9]*|'') echo "NODES must be a number" >&2; exit 2;; esac
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 200 ]; then echo "NODES must be 1..200" >&2; exit 2; fi
[ "$(id -u)" -eq 0 ] || { echo "netns-lab: needs root (ip netns)" >&2; exit 77; }
command -v ip >/dev/null || { echo "netns-lab: no ip (iproute2) on PATH" >&2; exit 77; }

prefix="ditnt-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"

lab_namespaces() {   # namespaces whose name starts with $1-
    ip netns list | awk '{print $1}' | grep -E "^$1-(br|n[0-9]+)\$" || true
}

remove_lab() {
    local ns pid
    for ns in $(lab_namespaces "$1"); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for ns in $(lab_namespaces "$1"); do ip netns del "$ns" 2>/dev/null || true; done
}

# Leftovers of labs whose script died without cleaning up (SIGKILL, power loss).
for stale in $(ip netns list | awk '{print $1}' | sed -nE 's/^(ditnt-([0-9]+)-[0-9a-f]+)-(br|n[0-9]+)$/\1 \2/p' | sort -u | awk '{print $1":"$2}'); do
    if ! kill -0 "${stale##*:}" 2>/dev/null; then remove_lab "${stale%%:*}"; fi
done

cleanup() {
    trap - EXIT
    remove_lab "$prefix"
    if [ -n "$(lab_namespaces "$prefix")" ]; then echo "netns-lab: could not remove all of $prefix" >&2; exit 1; fi
    echo "removed $prefix"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

br="$prefix-br"
if ! ip netns add "$br" 2>/dev/null; then
    echo "netns-lab: cannot create network namespaces here (ip netns add failed)" >&2
    trap - EXIT
    exit 77
fi
ip -n "$br" link set lo up
ip -n "$br" link add br0 type bridge
ip -n "$br" link set br0 up
for ((i = 0; i < nodes; i++)); do
    ns="$prefix-n$i"
    ip netns add "$ns"
    ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$br"
    ip -n "$br" link set "p$i" master br0
    ip -n "$br" link set "p$i" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.213.0.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
done
echo "lab $prefix"
echo "ready"

# Wait for the caller to go away (EOF) or to say "quit". `read` returns non-zero on EOF.
while read -r line; do
    [ "$line" = quit ] && break
done
