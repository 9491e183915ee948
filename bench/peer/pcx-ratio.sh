#!/usr/bin/env bash
# PCX's PC step (T = 5, SGD with momentum 0.1 on the beliefs, squared error) and its iPC step (T = 8, momentum 0.25)
# against backprop on PCX's MLP (GELU for all three, so that only the algorithm differs) at batch 128, in predcode
# and in PyTorch on the same machine, rounds alternating who goes first: each side's PC-to-BP and iPC-to-BP step
# ratios (the issue's "PC epoch vs BP epoch"), and predcode's speed-up over PyTorch per algorithm.
# THREADS (default 1; PyTorch's OpenBLAS gets the same count), ROUNDS (3), STEPS (40).
# Installs Debian's python3-torch when missing (never needed by the build or the tests).
# Output: bench/results/pcx/step-ratio-<date>.json and .md.
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/peer/torch-env.sh
threads=${THREADS:-1} rounds=${ROUNDS:-3} steps=${STEPS:-40}
model=bench/models/pcx-mlp-gelu.json
day=${TAG:-$(date +%Y-%m-%d)}
out=bench/results/pcx
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ours() {
  ./predcode bench --model "$model" --algorithm pc,backprop --batch-size 128 --n 5 --eta 0.026070879231635192 --belief-optimizer sgd:0.1 \
    --energy sample --loss mse --threads "$threads" --steps "$steps" --json "$tmp/pc-$1.json" >&2
  ./predcode bench --model "$model" --algorithm ipc --batch-size 128 --n 8 --eta 0.7996939108085619 --belief-optimizer sgd:0.25 \
    --energy sample --loss mse --threads "$threads" --steps "$steps" --json "$tmp/ipc-$1.json" >&2
  "$PY" -c 'import json, sys; a, b = (json.load(open(p)) for p in sys.argv[1:3]); a["records"] += b["records"]; json.dump(a, open(sys.argv[3], "w"))' \
    "$tmp/pc-$1.json" "$tmp/ipc-$1.json" "$tmp/predcode-$1.json"
}
theirs() {
  "$PY" bench/peer/torch_step.py --model "$model" --algorithm pc,backprop --batch-size 128 --n 5 --eta 0.026070879231635192 --momentum 0.1 \
    --loss mse --threads "$threads" --steps "$steps" --warmup 5 > "$tmp/pytorch-$1.jsonl"
  "$PY" bench/peer/torch_step.py --model "$model" --algorithm ipc --batch-size 128 --n 8 --eta 0.7996939108085619 --momentum 0.25 \
    --loss mse --threads "$threads" --steps "$steps" --warmup 5 >> "$tmp/pytorch-$1.jsonl"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then ours "$r"; theirs "$r"; else theirs "$r"; ours "$r"; fi
done
"$PY" bench/peer/compare.py "$tmp" "$rounds" "$out/step-ratio-$day.json" >&2
"$PY" - "$out/step-ratio-$day.json" "$threads" <<'PY'
import json, statistics, sys
path, threads = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
rows = {r["algorithm"]: r for r in doc["rows"]}
pc, bp, ipc = rows["pc"], rows["backprop"], rows["ipc"]
ratio = lambda alg, side: [p / b for p, b in zip(alg[side + "_ms_rounds"], bp[side + "_ms_rounds"])]  # each round's own
doc["pc_over_bp"] = {side: statistics.median(ratio(pc, side)) for side in ("predcode", "pytorch")}
doc["ipc_over_bp"] = {side: statistics.median(ratio(ipc, side)) for side in ("predcode", "pytorch")}
json.dump(doc, open(path, "w"), indent=2)
md = [f"PCX's MLP (GELU) at batch 128, {threads} thread(s), median of {doc['rounds']} alternating rounds (bench/peer/pcx-ratio.sh):", "",
      "| | PC step, ms | iPC step, ms | BP step, ms | PC / BP | iPC / BP |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
for side in ("predcode", "pytorch"):
    md.append(f"| {side} | {pc[side + '_ms']:.2f} | {ipc[side + '_ms']:.2f} | {bp[side + '_ms']:.2f} | {doc['pc_over_bp'][side]:.2f}x | {doc['ipc_over_bp'][side]:.2f}x |")
md += ["", f"predcode's speed-up over PyTorch: PC {pc['speedup']:.1f}x, iPC {ipc['speedup']:.1f}x, BP {bp['speedup']:.1f}x (torch {pc['torch']})."]
open(path[:-5] + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
