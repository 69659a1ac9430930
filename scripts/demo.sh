#!/usr/bin/env bash
# The main job on the embedded default: the project's own small pixel-space DiT
# (models/shapes-dit, trained here on the built-in shapes data set) sampled through the
# distributed pipeline on this machine (a coordinator, two local workers, a SQLite
# ledger), a sample sheet, the FID of the samples against the procedural data set, and
# their class-conditional accuracy under the shipped shape classifier.
#
#   scripts/demo.sh [OUT [N]]     OUT default out/demo, N samples (default 200)
#
# Environment: DIT (default models/shapes-dit/ema.safetensors), INCEPTION (FID Inception
# weights; default random:0 = the FID Inception architecture with deterministic random
# weights, a proxy: no real Inception weights ship with the project; pass pytorch-fid's
# pt_inception-2015-12-05-6726825d.pth for the standard FID). Re-running resumes; the samples
# are byte-identical whatever the worker count. About 6 minutes for N = 200 on the shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/demo}
n=${2:-200}
dit=${DIT:-models/shapes-dit/ema.safetensors}
inception=${INCEPTION:-random:0}
bin=.build/release
mkdir -p "$out"

# 1. N samples through the pipeline (the README's settings: DDIM 25 steps, classifier-free
#    guidance 3, each predicted x0 clipped to [-1, 1] as ADM does for pixels; classes balanced).
"$bin/dit-coordinator" run sample --dit "$dit" --vae identity \
    --num-samples "$n" --seed 0 --sampler ddim --steps 25 --cfg-scale 3 --clip-denoised --labels balanced \
    --samples-per-shard 25 --workers 2 --out "$out/samples" --ledger "$out/ledger.sqlite"

# 2. The sample sheet: the first 16 samples (labels balanced over the 4 classes, in a seeded order).
"$bin/dit-worker" grid --images "$out/samples" --count 16 --nrow 4 --scale 3 --out "$out/grid.png"

# 3. FID against the procedural data set: N held-out images (seed 1; the model trained on
#    seed 0), read recursively from the ImageFolder tree.
"$bin/dit-worker" dataset shapes --count "$n" --seed 1 --out "$out/reference" > /dev/null
"$bin/dit-worker" fidstats --inception "$inception" --images "$out/reference" --recursive --out "$out/reference.npz" --threads 2
"$bin/dit-worker" fidstats --inception "$inception" --samples "$out/samples" --out "$out/samples.npz" --threads 2
"$bin/dit-coordinator" fid "$out/reference.npz" "$out/samples.npz" | tee "$out/fid.txt"

# 4. Class-conditional accuracy: the share of samples that the shipped shape classifier
#    (models/shapes-classifier) assigns to their conditioning label (labels.npy).
"$bin/dit-worker" eval classify --classifier models/shapes-classifier/classifier.safetensors \
    --samples "$out/samples" --threads 2 | tee "$out/accuracy.txt"

echo "samples: $out/samples/NNNNNN.png, ADM batch $out/samples/samples_${n}x32x32x3.npz (+ recipe .json)"
echo "sheet:   $out/grid.png;  FID ($n vs $n, Inception $inception): $out/fid.txt;  class-conditional accuracy: $out/accuracy.txt"
