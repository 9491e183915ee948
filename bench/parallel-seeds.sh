#!/usr/bin/env bash
# A seed sweep one seed after another against --parallel-runs, side by side: PCX's Fashion-MNIST MLP with PC
# (bench/pcx-config.sh), SEEDS (default 0-3) for EPOCHS (default 2) each, ROUNDS (default 2) rounds alternating:
#   one   --threads 0 (all cores), seeds one after another: what --seeds did before
#   one1  --threads 1, seeds one after another
#   par   --parallel-runs K (default: the cores), a share of the cores each
# Reports each sweep's wall-clock seconds and checks that par's seeds are the same bytes as one1's when par runs one
# thread a seed (a run's sums depend on its thread count only). Needs Debian's dataset-fashion-mnist.
# Results: bench/results/parallel-seeds-TAG.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/pcx-config.sh
seeds=${SEEDS:-0-3} epochs=${EPOCHS:-2} rounds=${ROUNDS:-2} k=${K:-$(nproc)} tag=${TAG:-$(date +%F)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(train --data fashion-mnist "${pcx_shared[@]}" "${pcx_pc[@]}" --validation 0 --epochs "$epochs" --seeds "$seeds"
        --input-range -1:1 --drop-last --quiet --overwrite)
./predcode backends > /dev/null # builds first, outside the timings
declare -A secs
for r in $(seq "$rounds"); do
  for way in one one1 par; do
    case $way in
      one) opts=(--threads 0) ;;
      one1) opts=(--threads 1) ;;
      par) opts=(--parallel-runs "$k") ;;
    esac
    start=$(date +%s.%N)
    ./predcode "${common[@]}" "${opts[@]}" --out "$work/$way" > "$work/$way.log"
    t=$(echo "$(date +%s.%N) - $start" | bc)
    secs[$way]="${secs[$way]:-} $t"
    echo "round $r $way: $t s"
  done
done
same=yes
if [ "$(( $(nproc) / k ))" -le 1 ]; then
  for d in "$work"/one1/seed-*; do cmp -s "$d/model.safetensors" "$work/par/$(basename "$d")/model.safetensors" || same=no; done
else same="not compared (par ran $(( $(nproc) / k )) threads a seed)"; fi
out=bench/results/parallel-seeds-$tag.md
{
  echo "# A seed sweep one after another against --parallel-runs $k ($tag, $(git rev-parse --short HEAD))"
  echo
  echo "\`SEEDS=$seeds EPOCHS=$epochs ROUNDS=$rounds K=$k bash bench/parallel-seeds.sh\` on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)):"
  echo "PCX's PC config on Fashion-MNIST, seeds $seeds, $epochs epochs each, whole sweeps alternating."
  echo
  echo "| sweep | seconds, each round | median |"
  echo "| --- | --- | ---: |"
  for way in one one1 par; do
    med=$(printf '%s\n' ${secs[$way]} | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}')
    echo "| $way | ${secs[$way]} | $med |"
  done
  echo
  echo "Seeds of par equal to one1's, byte for byte: $same."
  echo
  echo "Per-seed results of the last par sweep:"
  echo
  echo '```'
  sed -n '/^seeds: [0-9]* runs/,$p' "$work/par.log"
  echo '```'
} > "$out"
cat "$out"
