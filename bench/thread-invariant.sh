#!/usr/bin/env bash
# What --thread-invariant costs, side by side in one run: `predcode bench` steps with and without it, alternating
# over ROUNDS (default 3) rounds, at THREADS (default "1 2") threads, on PCX's MLP (PC T = 5 and backprop, batch 128)
# and on example-cnn (STRICT and backprop, batch 300). Reports each configuration's median ms a step and the ratio.
# Results: bench/results/thread-invariant-TAG.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} threads=${THREADS:-"1 2"} steps=${STEPS:-200} tag=${TAG:-$(date +%F)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./predcode backends > /dev/null # builds first, outside the timings
mlp=(--model bench/models/pcx-mlp-gelu.json --algorithm pc,backprop --loss mse --batch-size 128 --T 5 --inference-lr 0.026 --inference-momentum 0.1 --steps "$steps")
cnn=(--model example-cnn --algorithm strict,backprop --batch-size 300 --steps $(( steps / 10 )))
for r in $(seq "$rounds"); do
  for t in $threads; do
    for mode in split invariant; do
      opt=(); [ "$mode" = invariant ] && opt=(--thread-invariant)
      for m in mlp cnn; do
        declare -n args=$m
        ./predcode bench "${args[@]}" --threads "$t" "${opt[@]}" | awk -v m="$m" -v t="$t" -v mode="$mode" '/^cpu /{print m, $4, t, mode, $5}' >> "$work/times"
      done
    done
  done
  echo "round $r of $rounds done"
done
out=bench/results/thread-invariant-$tag.md
{
  echo "# What --thread-invariant costs ($tag, $(git rev-parse --short HEAD))"
  echo
  echo "\`ROUNDS=$rounds THREADS=\"$threads\" STEPS=$steps bash bench/thread-invariant.sh\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)):"
  echo "\`predcode bench\` with and without \`--thread-invariant\`, alternating; ms a step, the median over the rounds (each round's in brackets)."
  echo
  echo "| model | algorithm | threads | split by threads | thread-invariant | invariant / split |"
  echo "| --- | --- | ---: | ---: | ---: | ---: |"
  python3 - "$work/times" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, a, t, mode, ms = line.split()
    d[(m, a, int(t), mode)].append(float(ms))
for (m, a, t) in sorted({k[:3] for k in d}, key=lambda k: (k[0] != 'mlp', k[1], k[2])):
    s, i = d[(m, a, t, 'split')], d[(m, a, t, 'invariant')]
    ms, mi = statistics.median(s), statistics.median(i)
    name = "PCX's MLP" if m == 'mlp' else 'example-cnn'
    print(f"| {name} | {a} | {t} | {ms:.2f} ({', '.join(f'{x:.2f}' for x in s)}) | {mi:.2f} ({', '.join(f'{x:.2f}' for x in i)}) | {mi / ms:.2f}x |")
PY
} > "$out"
cat "$out"
