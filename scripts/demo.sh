#!/usr/bin/env bash
# The main job on the embedded default: the project's own small pixel-space DiT
# (models/shapes-dit, trained on the built-in shapes data set) sampled through the
# distributed pipeline on this machine: a coordinator, two local workers, a SQLite
# ledger. Re-running resumes; outputs are byte-identical whatever the worker count.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/demo}
bin=.build/release
mkdir -p "$out"
"$bin/dit-coordinator" run sample --dit models/shapes-dit/ema.safetensors --vae identity \
    --num-samples 16 --seed 0 --sampler ddim --steps 25 --cfg-scale 1 --labels balanced \
    --samples-per-shard 4 --workers 2 --out "$out/samples" --ledger "$out/ledger.sqlite"
echo "samples: $out/samples/NNNNNN.png, ADM batch $out/samples/samples_16x32x32x3.npz (+ recipe .json)"
