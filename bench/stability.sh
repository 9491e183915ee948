#!/usr/bin/env bash
# The STRICT stability study (docs/stability.md): the CLI defaults (STRICT, cross-entropy, eta 0.1,
# n 20, Adam lr 0.002) with the stable relaxation on and off, on digits (100 epochs, seeds 0-4) and on
# Fashion-MNIST (example-cnn, batch 300, 2 epochs, seeds 0-3; apt-get install dataset-fashion-mnist).
# PARTS=fashion-optimizers: the same Fashion-MNIST STRICT (eta 0.1, n 20, cross-entropy, 2 epochs, seeds 0-3)
# with SGD and momentum at smaller batches, against Adam at the same batch and backprop with the same SGD.
# Summary: bench/results/stability-<part>-<date>.jsonl, one line per run. PARTS=digits or PARTS=fashion runs one part.
set -uo pipefail
cd "$(dirname "$0")/.."
run() { # name, then train's options
  local name=$1; shift
  ./predcode train --quiet --overwrite --out "runs/stability-$name" "$@" > "runs/stability-$name.log" 2>&1
  local code=$?
  python3 - "$name" "$code" "runs/stability-$name/metrics.json" >> "$out" <<'PY'
import json, sys
name, code, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = json.load(open(path))
print(json.dumps({"run": name, "exit": code, "epochs_run": len(m["epochs"]), "final_test_accuracy": m["final_test_accuracy"],
                  "best_epoch": m.get("best_epoch"), "best_test_accuracy": m.get("best_test_accuracy"), "stop_reason": m["stop_reason"], "events": m["events"]}))
PY
  tail -1 "$out"
}
mkdir -p runs
for part in ${PARTS:-digits fashion}; do
  out="bench/results/stability-$part-$(date +%Y-%m-%d).jsonl"
  : > "$out"
  if [ "$part" = digits ]; then
    for relax in on off; do for seed in 0 1 2 3 4; do
      run "digits-$relax-s$seed" --epochs 100 --seed "$seed" --stable-relaxation "$relax"
    done; done
  elif [ "$part" = fashion-optimizers ]; then
    fm=(--model example-cnn --data fashion-mnist --epochs 2)
    for seed in 0 1 2 3; do
      run "fashion-sgd-b100-s$seed" "${fm[@]}" --seed "$seed" --batch-size 100 --optimizer sgd --lr 0.07 --momentum 0.9
      run "fashion-sgd-b50-s$seed" "${fm[@]}" --seed "$seed" --batch-size 50 --optimizer sgd --lr 0.03 --momentum 0.9
      run "fashion-adam-b100-s$seed" "${fm[@]}" --seed "$seed" --batch-size 100
      run "fashion-backprop-sgd-b100-s$seed" "${fm[@]}" --seed "$seed" --batch-size 100 --optimizer sgd --lr 0.07 --momentum 0.9 --algorithm backprop
    done
  else
    for relax in on off; do for seed in 0 1 2 3; do
      run "fashion-$relax-s$seed" --model example-cnn --data fashion-mnist --batch-size 300 --epochs 2 --seed "$seed" --stable-relaxation "$relax"
    done; done
  fi
done
