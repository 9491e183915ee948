#!/usr/bin/env bash
# Successive halving against the whole grid, on one machine, one after the other: PCX's PC config on Fashion-MNIST
# (bench/pcx-config.sh) with its weight learning rate and belief step searched, EPOCHS epochs, two runs at once.
# Prints each search's wall-clock (ROUNDS rounds, the two searches alternating), the epochs it trained, its table
# (the last round's), and whether the point halving chose is byte for byte the whole grid's. Needs Fashion-MNIST
# (apt-get install dataset-fashion-mnist). EPOCHS=9 ETA=3 ROUNDS=2 bash bench/halving.sh; a larger grid:
# GRID="lr=log:1e-4:1e-3:3 eta=0.1,0.026,0.01 n=3,5,8" bash bench/halving.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/pcx-config.sh
EPOCHS=${EPOCHS:-9} ETA=${ETA:-3} K=${K:-2} ROUNDS=${ROUNDS:-1} OUT=${OUT:-runs/halving-bench}
mkdir -p "$(dirname "$OUT")"
# The grid: GRID="lr=... eta=..." (each KEY=VALUES a --grid axis; --n for T).
read -r -a axes <<< "${GRID:-lr=log:1e-4:1e-3:3 eta=0.1,0.026,0.01}"
grid=(); keys=" "
for axis in "${axes[@]}"; do grid+=(--grid "$axis"); keys+="--${axis%%=*} "; done
pc_fixed=()
for ((i = 0; i < ${#pcx_pc[@]}; i++)); do # pcx_pc without the options the grid gives
    if [[ "${pcx_pc[i]}" == --* && "$keys" == *" ${pcx_pc[i]} "* ]]; then i=$((i + 1)); else pc_fixed+=("${pcx_pc[i]}"); fi
done
common=(train --data fashion-mnist "${pcx_shared[@]}" "${pc_fixed[@]}" --input-range -1:1 --drop-last --validation 0.0167
        --epochs "$EPOCHS" "${grid[@]}" --parallel-runs "$K" --quiet)
for ((round = 1; round <= ROUNDS; round++)); do
    rm -rf "$OUT"
    for search in whole halving; do
        extra=(); [[ $search == halving ]] && extra=(--halving "$ETA")
        start=$(date +%s.%N)
        ./predcode "${common[@]}" "${extra[@]}" --out "$OUT/$search" > "$OUT-$search.log" 2>&1
        end=$(date +%s.%N)
        epochs=$(python3 -c "import json,glob; print(sum(len(json.load(open(f))['epochs']) for f in glob.glob('$OUT/$search/*/metrics.json')))")
        printf 'round %d, %s: %.1f s, %s epochs trained\n' "$round" "$search" "$(echo "$end - $start" | bc)" "$epochs"
    done
done
for search in whole halving; do sed -n '/^grid: .* points/,$p' "$OUT-$search.log"; done
best=$(python3 -c "import json; print(json.load(open('$OUT/halving/grid.json'))['points'][0]['out'].rsplit('/', 1)[1])")
cmp -s "$OUT/whole/$best/model.safetensors" "$OUT/halving/$best/model.safetensors" && same="byte for byte the same" || same="NOT the same"
echo "halving's choice, $best: its model is $same as the whole grid's"
