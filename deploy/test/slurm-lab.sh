#!/usr/bin/env bash
# A private single-node Slurm cluster on this machine, for the Slurm tests
# (Tests/PipelineTests/SlurmRecipeTests.swift) and for trying the Slurm recipes by hand.
#
#   deploy/test/slurm-lab.sh DIR        (needs slurm-wlm and munge: deploy/debian-packages.txt)
#
# Everything lives under DIR (created if missing): its own munge key, made now, and munged on
# its own socket; slurm.conf (ClusterName=ditlab, this machine's CPUs and memory as
# `slurmd -C` reports them, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# SelectType=select/cons_tres, free ports, SlurmUser = the caller); state, spool, pid and
# log folders. munged, slurmctld and slurmd run in the foreground (-F / -D) as children of
# this script, which records their pids. Nothing outside DIR is read or written: point the
# client commands at the cluster with SLURM_CONF=DIR/etc/slurm.conf.
#
# Prints "conf DIR/etc/slurm.conf" and then "ready" once the node takes jobs, then waits
# until its standard input closes (the caller exited or died) or it gets SIGTERM/SIGINT/SIGHUP.
# Then it cancels the cluster's jobs, stops the daemons it started (by their recorded pids),
# and kills what is left of the processes started inside the cluster (they carry
# DIT_SLURM_LAB=DIR in their environment; nothing else is touched).
# Exit status 77 (with the reason on stderr): this machine cannot run slurmd at all.
#
#   SLURM_CONF=DIR/etc/slurm.conf sbatch --ntasks=2 deploy/slurm/dit-job.sbatch ...
set -euo pipefail

dir=${1:?usage: slurm-lab.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for exe in munged slurmctld slurmd scontrol sinfo squeue scancel; do
    command -v "$exe" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
    command -v "$exe" >/dev/null || { echo "slurm-lab: $exe not found: install slurm-wlm and munge (scripts/install-deps.sh)" >&2; exit 2; }
done

conf="$dir/etc/slurm.conf"
user=$(id -un)
export SLURM_CONF="$conf"
mkdir -p "$dir/etc" "$dir/munge" "$dir/state" "$dir/spool" "$dir/run" "$dir/log"
chmod 700 "$dir/munge"

pids=()          # daemons, in start order
names=()

# Processes started inside the cluster: the daemons and what they started carry the marker
# DIT_SLURM_LAB=DIR (the tests also give it to the jobs they submit); this script does not.
lab_processes() {
    local p
    for p in /proc/[0-9]*; do
        if grep -qzxF "DIT_SLURM_LAB=$dir" "$p/environ" 2>/dev/null; then echo "${p#/proc/}"; fi
    done
}

stop_pid() {   # pid name: SIGTERM, up to 10 s, then SIGKILL
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "slurm-lab: $2 (pid $pid) ignored SIGTERM: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    trap - EXIT
    set +e
    if [ -n "${ctld_up:-}" ]; then
        # The jobs first (their steps get SIGTERM, then SIGKILL after KillWait), while slurmd
        # is still there to end them.
        scancel --quiet -u "$user" 2>/dev/null
        for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
        scancel --quiet --full --signal=KILL -u "$user" 2>/dev/null
    fi
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}" "${names[$i]}"; done
    for p in $(lab_processes); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.2
    if [ -n "$(lab_processes)" ]; then echo "slurm-lab: processes left: $(lab_processes)" >&2; exit 1; fi
    echo "stopped $dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

cannot() {   # the machine cannot run the cluster: exit 77 with the reason
    echo "slurm-lab: cannot run slurmd here: $*" >&2
    exit 77
}

free_port() {   # a TCP port nobody listens on (ss from iproute2)
    local p
    while true; do
        p=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
    done
}

# munge: a fresh key, our own socket, pid, log and seed files.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
DIT_SLURM_LAB=$dir munged --foreground --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    </dev/null >>"$dir/log/munged.out" 2>&1 &
pids+=($!); names+=(munged)
for _ in $(seq 100); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
munge -n -S "$dir/munge/munge.socket" | unmunge -S "$dir/munge/munge.socket" >/dev/null 2>&1 \
    || cannot "munged did not start: $(tail -n 5 "$dir/log/munged.log" "$dir/log/munged.out" 2>/dev/null)"

# The node as slurmd sees it (CPUs, sockets, cores, threads, memory), reachable on loopback.
node_line=$(slurmd -C 2>/dev/null | head -n 1) || true
case $node_line in (NodeName=*) ;; (*) cannot "slurmd -C failed";; esac
host=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
# Jobs reach the node by its name (the recipes connect workers to tcp://NODE:PORT): the host
# name when it resolves, else localhost (SLURM_LAB_NODE overrides).
node=${SLURM_LAB_NODE:-$host}
getent hosts "$node" >/dev/null 2>&1 || node=localhost
node_line="NodeName=$node ${node_line#NodeName="$host" }"
: >"$dir/etc/plugstack.conf"
cat >"$conf" <<EOF
# Written by deploy/test/slurm-lab.sh for the private cluster in $dir.
ClusterName=ditlab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a job credential's lifetime, also how long a requeued job waits before it may
# start again (Slurm's default is 120 s).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Look at pending jobs every 2 s (default 60 s and 30 s): a requeued job starts soon after its wait.
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
KillWait=30
MinJobAge=600
# A small machine runs several jobs at once: each core may be given to up to 8 jobs.
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=lab Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF

DIT_SLURM_LAB=$dir slurmctld -D -f "$conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
pids+=($!); names+=(slurmctld)
ctld_up=1
for _ in $(seq 150); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP \
    || cannot "slurmctld did not come up: $(tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmctld.out" 2>/dev/null)"

DIT_SLURM_LAB=$dir slurmd -D -N "$node" -f "$conf" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
pids+=($!); names+=(slurmd)
state=""
for _ in $(seq 150); do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
    case $state in (idle*|mixed*|allocated*) break;; esac
    kill -0 "${pids[2]}" 2>/dev/null || break
    sleep 0.2
done
case $state in
    (idle*|mixed*|allocated*) ;;
    (*) cannot "slurmd did not register (node state '${state:-none}'): $(tail -n 5 "$dir/log/slurmd.log" "$dir/log/slurmd.out" 2>/dev/null)";;
esac

echo "conf $conf"
echo "node $node"
echo "ready"
# Until the caller closes our standard input (or dies).
cat >/dev/null || true
