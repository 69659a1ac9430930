#!/usr/bin/env bash
# The README's sampler table: FID against model calls and seconds per image for each
# sampler on a model (default the shipped models/shapes-dit; the README's table: DIT=models/shapes-dit-eps/ema.safetensors),
# plus DiT-XL/2 timing with random weights.
#
#   scripts/sampler-table.sh [OUT [N]]     OUT default out/sampler-table, N samples per row (default 1000)
#
# Every row samples the same N indices (seed 0, balanced labels) with `dit-worker sample`
# (one process, 2 threads, per-sample model calls) and computes the FID against the same N
# held-out images of the procedural set (`dataset shapes --seed 1`) with the same Inception
# (INCEPTION, default random:0, the proxy the demo uses). Seconds per image come from a
# separate timing pass (T images per row, default 100, back to back, not niced) so that the
# long FID pass's varying load does not enter them. Rows already done (their fid.txt /
# time.log exists) are kept: rerun to resume; delete OUT to redo after retraining the model.
# Environment: DIT (default models/shapes-dit/ema.safetensors), INCEPTION, XL=0 skips the
# DiT-XL/2 timing. Runs its own copy of the release binaries (a rebuild meanwhile is harmless).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/sampler-table}
n=${2:-1000}
timing=${T:-100}
dit=${DIT:-models/shapes-dit/ema.safetensors}
inception=${INCEPTION:-random:0}
mkdir -p "$out/bin"
cp .build/release/dit-worker .build/release/dit-coordinator "$out/bin/"
bin="$out/bin"

# The reference: N held-out images (the model trained on seed 0).
if [ ! -f "$out/reference.npz" ]; then
    "$bin/dit-worker" dataset shapes --count "$n" --seed 1 --out "$out/reference" > /dev/null
    "$bin/dit-worker" fidstats --inception "$inception" --images "$out/reference" --recursive \
        --out "$out/reference.npz" --threads 2
fi
# The floor: N other real images (seed 2) against the reference; no sampler can do better.
if [ ! -f "$out/real2.fid.txt" ]; then
    "$bin/dit-worker" dataset shapes --count "$n" --seed 2 --out "$out/real2" > /dev/null
    "$bin/dit-worker" fidstats --inception "$inception" --images "$out/real2" --recursive \
        --out "$out/real2.npz" --threads 2
    "$bin/dit-coordinator" fid "$out/reference.npz" "$out/real2.npz" > "$out/real2.fid.tmp"
    mv "$out/real2.fid.tmp" "$out/real2.fid.txt"
fi

# sampler steps cfg-scale cfg-interval(- = none); cheap rows first, so a partial run is useful
rows=(
    "dpmpp2m 20 1 -"
    "ddim 25 1 -"
    "dpmpp2m 10 1 -"
    "unipc 10 1 -"
    "heun 10 1 -"
    "dpmpp2m 15 1 -"
    "dpmpp2m 25 1 -"
    "euler 25 1 -"
    "unipc 20 1 -"
    "dpmpp2m 20 1.5 0,600"
    "dpmpp2m 20 1.5 -"
    "ddim 50 1 -"
    "ddpm 250 1 -"
    "ddpm 50 1 -"
    "ddpm 25 1 -"
)
# Sets sampler, steps, cfg, interval, the sample flags (args) and the row's folder d.
parse_row() {
    read -r sampler steps cfg interval <<< "$1"
    local name="${sampler}_${steps}_cfg${cfg}"
    args=(--sampler "$sampler" --steps "$steps" --cfg-scale "$cfg")
    if [ "$interval" != "-" ]; then name="${name}_t${interval/,/-}"; args+=(--cfg-interval "$interval"); fi
    d="$out/$name"
}
table="$out/table.md"
echo "| sampler | steps | cfg | guidance interval | model calls / image | s / image | FID ($n vs $n) |" > "$table"
echo "| --- | --- | --- | --- | --- | --- | --- |" >> "$table"
for row in "${rows[@]}"; do
    parse_row "$row"
    if [ ! -f "$d/fid.txt" ]; then
        rm -rf "$d"
        "$bin/dit-worker" sample --dit "$dit" --vae identity --num-samples "$n" --seed 0 --labels balanced \
            "${args[@]}" --batch 50 --threads 2 \
            --out "$d" 2> /dev/null | tee "$d.log"
        "$bin/dit-worker" fidstats --inception "$inception" --images "$d" --out "$d.npz" --threads 2 > /dev/null
        "$bin/dit-coordinator" fid "$out/reference.npz" "$d.npz" > "$d/fid.txt"
    fi
done

# Timing pass: T images per row, back to back.
for row in "${rows[@]}"; do
    parse_row "$row"
    if [ ! -f "$d.time.log" ]; then
        rm -rf "$out/timing"
        "$bin/dit-worker" sample --dit "$dit" --vae identity --num-samples "$timing" --seed 0 --labels balanced \
            "${args[@]}" --batch 50 --threads 2 \
            --out "$out/timing" 2> /dev/null > "$d.time.tmp"
        mv "$d.time.tmp" "$d.time.log"
    fi
    calls=$(sed -n 's/^model calls per image: \([0-9]*\).*/\1/p' "$d.time.log")
    secs=$(sed -n 's/.*seconds per image: \([0-9.]*\).*/\1/p' "$d.time.log")
    fid=$(sed -n 's/^FID: //p' "$d/fid.txt")
    printf '| %s | %s | %s | %s | %s | %s | %.2f |\n' "$sampler" "$steps" "$cfg" "${interval/-/}" "$calls" "$secs" "$fid" >> "$table"
done
rm -rf "$out/timing"
printf '| real images (another %s) | | | | | | %.2f |\n' "$n" "$(sed -n 's/^FID: //p' "$out/real2.fid.txt")" >> "$table"
cat "$table"

# DiT-XL/2 at 256 px with random weights: a few timed steps of 2 images, extrapolated.
if [ "${XL:-1}" != 0 ]; then
    for s in "ddpm 250" "dpmpp2m 20"; do
        read -r sampler steps <<< "$s"
        "$bin/dit-worker" bench sample --model DiT-XL/2 --image-size 256 --sampler "$sampler" --steps "$steps" \
            --cfg-scale 1.5 --images 2 --timed-steps 2 --threads 2 | tee -a "$out/xl.txt"
    done
fi
