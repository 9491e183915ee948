#!/usr/bin/env bash
# PCX's Fashion-MNIST MLP benchmark ("Benchmarking Predictive Coding Networks -- Made Simple", its
# examples/discriminative_experiments/MLP/fmnist configs), run by predcode: PC (squared error, T = 5),
# iPC (T = 8) and backprop, one after the other in one run, with each config's own hyperparameters:
# 784-128-128-128-10, batch 128, 25 epochs, AdamW with PCX's warmup-cosine schedule, one-hot targets
# with squared error, beliefs relaxed by SGD with momentum on each sample's energy.
# Each config's own activation, as PCX's: GELU for PC (jax.nn.gelu's default, the tanh approximation: gelu_tanh),
# leaky ReLU for iPC, ReLU for BP (bench/models/).
# Inputs in [-1, 1] as PCX normalises them (INPUT_RANGE=0:1 for the data as read).
# Differences, ours: 1,000 training samples held out to pick the best epoch (PCX reports its best test accuracy over the epochs; we report the last epoch's and the
# validation-picked one's). VALIDATION=0 trains on all 60,000, as PCX does (then no epoch is picked: the last epoch's model is kept).
# Each epoch drops its last partial batch as PCX's loaders do (468 steps of 128; DROP_LAST=0 keeps it: 469).
# The test set is scored as PCX scores it, in whole batches of 128 in stored order (9,984 of the 10,000 images:
# --score-whole-batches); WHOLE_BATCHES=0 scores all 10,000.
# Needs Debian's dataset-fashion-mnist. EPOCHS=2 for a quick look; THREADS=1 for one CPU thread (default all cores, the
# faster since the CPU backend's workers spin: 2026-12-01). Results: bench/results/pcx/.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${EPOCHS:-25}
tag=${TAG:-$(date +%F)}
out=bench/results/pcx
mkdir -p "$out"
. bench/pcx-config.sh
common=(--data fashion-mnist "${pcx_shared[@]}"
        --validation "${VALIDATION:-0.0167}" --epochs "$epochs" --seed "${SEED:-0}" --input-range "${INPUT_RANGE:--1:1}" --threads "${THREADS:-0}" --quiet)
[ "${DROP_LAST:-1}" = 1 ] && common+=(--drop-last)
[ "${WHOLE_BATCHES:-1}" = 1 ] && common+=(--score-whole-batches)
run() { # name, then the config's own options; ONLY="pc ipc" runs a subset
  local name=$1; shift
  [[ " ${ONLY:-bp pc ipc} " == *" $name "* ]] || return 0
  ./predcode train "${common[@]}" "$@" --overwrite --out "runs/pcx-$name" | tee "$out/$name-$tag.log"
  cp "runs/pcx-$name/metrics.json" "$out/$name-$tag.json"
}
run bp  "${pcx_bp[@]}"
run pc  "${pcx_pc[@]}"
run ipc "${pcx_ipc[@]}"
python3 - "$out" "$tag" <<'PY'
import json, sys, statistics
out, tag = sys.argv[1], sys.argv[2]
rows = []
for name in (n for n in ("bp", "pc", "ipc") if __import__("os").path.exists(f"{out}/{n}-{tag}.json")):
    m = json.load(open(f"{out}/{name}-{tag}.json"))
    ep = m["epochs"]
    train_s = statistics.median(e["seconds"] for e in ep)
    rows.append((name, 100 * m["final_test_accuracy"], 100 * m.get("best_test_accuracy", float("nan")), m.get("best_epoch"), train_s, m["ms_per_step"]))
bp_s = rows[0][4]
with open(f"{out}/summary-{tag}.md", "w") as f:
    f.write("| algorithm | test acc, last epoch | test acc, best validation epoch | best epoch | s/epoch (median) | ms/step (median) | epoch vs BP |\n|---|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r[0]} | {r[1]:.2f}% | {r[2]:.2f}% | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | {r[4] / bp_s:.2f}x |\n")
print(open(f"{out}/summary-{tag}.md").read())
PY
