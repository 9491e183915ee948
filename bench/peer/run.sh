#!/usr/bin/env bash
# predcode and PyTorch on the same machine, in one run, same models, batch, eta and n.
# Installs Debian's python3-torch when missing (never needed by the build or the tests).
# Output: bench/results/peer-<date>.json with both sides and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/peer/torch-env.sh
threads=${THREADS:-$(nproc)}
steps=${STEPS:-20}
warmup=${WARMUP:-10}
# This kind of machine shares its cores: its speed swings by tens of percent over minutes. Each round
# times both sides back to back, alternating who goes first, so a slow phase lands on both; the
# speed-up is the median of the rounds' ratios.
rounds=${ROUNDS:-3}
day=$(date +%Y-%m-%d)
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ours() {
  # STRICT twice: as shipped (layer 1 condensed where it pays) and relaxing layer 1 in its own space, as Torch2PC does.
  ./predcode bench --model example-cnn,mlp --algorithm strict,fixedpred,backprop --condense auto,never --batch-size 300 --threads "$threads" \
    --steps "$steps" --warmup "$warmup" --eta 0.1 --n 20 --profile --json "$tmp/predcode-$1.json"
}
# PyTorch has no JIT to warm up: three steps settle its allocator and thread pool.
theirs() { "$PY" bench/peer/torch_step.py --threads "$threads" --steps "$steps" --warmup 3 > "$tmp/pytorch-$1.jsonl"; }
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then ours "$r"; theirs "$r"; else theirs "$r"; ours "$r"; fi
done
cp "$tmp/predcode-1.json" "bench/results/predcode-$day.json"   # the profiled step table in the README
cat "$tmp"/pytorch-*.jsonl > "bench/results/pytorch-$day.jsonl"
"$PY" bench/peer/compare.py "$tmp" "$rounds" "bench/results/peer-$day.json"
