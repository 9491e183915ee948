#!/usr/bin/env bash
# The real-data targets: Torch2PC's Example1 CNN on Fashion-MNIST, batch 300, Adam lr 0.002, 2 epochs, seed 0,
# on all 60,000 training images as Torch2PC trains (--validation 0: none held out).
# Needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist). Results: bench/results/fashion-mnist/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/fashion-mnist
for alg in ${ALGORITHMS:-backprop exact fixedpred strict}; do
  extra=()
  case "$alg" in
    fixedpred) extra=(--eta 0.1 --n 20) ;;
    strict) extra=(--eta "${STRICT_ETA:-0.1}" --n "${STRICT_N:-20}" ${STRICT_LOSS:+--loss "$STRICT_LOSS"}) ;;
  esac
  ./predcode train --quiet --model example-cnn --data fashion-mnist --batch-size 300 --optimizer adam --lr 0.002 \
    --epochs 2 --seed 0 --validation 0 --algorithm "$alg" "${extra[@]}" --overwrite --out "runs/fashion-$alg${TAG:-}" | tee "$out/$alg${TAG:-}.log"
  cp "runs/fashion-$alg${TAG:-}/metrics.json" "$out/$alg${TAG:-}.json"
done
