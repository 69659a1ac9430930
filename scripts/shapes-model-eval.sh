#!/usr/bin/env bash
# The shipped model's two figures, class-conditional accuracy and FID, beside the same two for
# the untrained model (same architecture and diffusion, the trainer's step-0 initialisation) and
# for real held-out images of the procedural set: the README's table.
#
#   scripts/shapes-model-eval.sh [OUT [N]]     OUT default out/shapes-eval, N samples (default 1000)
#
# Samples: N indices, seed 0, balanced labels, with the README's sampler settings (SAMPLER_ARGS,
# default "--sampler ddim --steps 25 --cfg-scale 3 --clip-denoised"). Accuracy: the share of
# samples that models/shapes-classifier assigns to their conditioning label
# (`dit-worker eval classify`); for real images, its accuracy on N images of seed 4 (the DiT
# trained on seed 0, the classifier on seed 2, the FID reference is seed 1). FID: against N
# held-out images of seed 1, Inception INCEPTION (default random:0, the proxy the demo uses).
# Environment: DIT (default models/shapes-dit/ema.safetensors), INCEPTION, SAMPLER_ARGS.
# Finished rows (their result.txt) are kept: rerun to resume, delete OUT to redo. Progress and
# warnings (the proxy Inception's) go to OUT/log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/shapes-eval}
n=${2:-1000}
dit=${DIT:-models/shapes-dit/ema.safetensors}
inception=${INCEPTION:-random:0}
sampler_args=${SAMPLER_ARGS:---sampler ddim --steps 25 --cfg-scale 3 --clip-denoised}
classifier=models/shapes-classifier/classifier.safetensors
mkdir -p "$out/bin"
cp .build/release/dit-worker .build/release/dit-coordinator "$out/bin/"
bin="$out/bin"

if [ ! -f "$out/reference.npz" ]; then
    "$bin/dit-worker" dataset shapes --count "$n" --seed 1 --out "$out/reference" > /dev/null
    "$bin/dit-worker" fidstats --inception "$inception" --images "$out/reference" --recursive \
        --out "$out/reference.npz" --threads 2 > /dev/null 2>> "$out/log"
fi

# finish NAME: the row's line from $out/NAME/stats.npz (FID against the reference) and $out/NAME/accuracy.txt.
finish() {
    local name=$1
    local fid
    fid=$("$bin/dit-coordinator" fid "$out/reference.npz" "$out/$name/stats.npz" 2>/dev/null | sed -n 's/^FID: //p')
    local acc
    acc=$(grep -o '[0-9.]*%' "$out/$name/accuracy.txt" | head -1)
    echo "$name: class-conditional accuracy $acc, FID $fid ($n vs $n, Inception $inception)" | tee "$out/$name/result.txt"
}

# A model's row: N samples, their accuracy and statistics.
model_row() {
    local name=$1 weights=$2
    [ -f "$out/$name/result.txt" ] && { cat "$out/$name/result.txt"; return; }
    mkdir -p "$out/$name"
    # shellcheck disable=SC2086
    "$bin/dit-worker" sample --dit "$weights" --vae identity --num-samples "$n" --seed 0 --labels balanced \
        $sampler_args --out "$out/$name/samples" --threads 2 > "$out/$name/sample.log" 2>&1
    "$bin/dit-worker" eval classify --classifier "$classifier" --samples "$out/$name/samples" --threads 2 \
        > "$out/$name/accuracy.txt"
    "$bin/dit-worker" fidstats --inception "$inception" --samples "$out/$name/samples" --out "$out/$name/stats.npz" \
        --threads 2 > /dev/null 2>> "$out/log"
    finish "$name"
}

model_row trained "$dit"

# The untrained model: `train --steps 0` with the shipped model's arguments (args.json) on a
# tiny folder (only the class count is read from it).
if [ ! -f "$out/untrained/result.txt" ]; then
    "$bin/dit-worker" dataset shapes --count 8 --out "$out/tiny-data" > /dev/null
    args=$(dirname "$dit")/args.json
    arg() { sed -n "s/^ *\"$1\" : \([^,]*\),\{0,1\}\$/\1/p" "$args"; }   # a value of args.json (pretty-printed)
    flags="--patch-size $(arg patchSize) --hidden-size $(arg hiddenSize) --depth $(arg depth)"
    flags+=" --heads $(arg numHeads) --seed $(arg seed) --class-dropout-prob $(arg classDropoutProb)"
    [ "$(arg learnSigma)" = false ] && flags+=" --no-learn-sigma" || flags+=" --learn-sigma"
    [ "$(arg predictXstart)" = true ] && flags+=" --predict-xstart"
    # shellcheck disable=SC2086
    "$bin/dit-worker" train --data "$out/tiny-data" --steps 0 $flags --out "$out/untrained-model" > /dev/null
fi
model_row untrained "$out/untrained-model/ema.safetensors"

# Real held-out images: the classifier's accuracy on them, and their FID (the floor).
if [ ! -f "$out/real/result.txt" ]; then
    mkdir -p "$out/real"
    "$bin/dit-worker" dataset shapes --count "$n" --seed 4 --out "$out/real/images" > /dev/null
    "$bin/dit-worker" eval classify --classifier "$classifier" --images "$out/real/images" --threads 2 > "$out/real/accuracy.txt"
    "$bin/dit-worker" fidstats --inception "$inception" --images "$out/real/images" --recursive \
        --out "$out/real/stats.npz" --threads 2 > /dev/null 2>> "$out/log"
    finish real
else
    cat "$out/real/result.txt"
fi
