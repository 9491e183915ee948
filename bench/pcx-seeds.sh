#!/usr/bin/env bash
# PCX's Fashion-MNIST MLP benchmark (bench/pcx-fashion-mlp.sh) over several seeds, as PCX reports it
# (mean and standard deviation over seeds), for PC and BP. SEEDS="0 1 2 3 4 5 6" by default, PCX's seven
# (its discriminative_experiments/seed.py); ONLY="bp pc" by default; VALIDATION=0 trains on all 60,000 as
# PCX does; TAG names the results (default: the date). PCX's published figure ("avg5") is each seed's best
# test epoch, averaged over the five best of the seven seeds: the summary gives that beside the plain means.
# Results: bench/results/pcx/{bp,pc}-seedN-TAG.json and seeds-TAG.md.
set -euo pipefail
cd "$(dirname "$0")/.."
date=${TAG:-$(date +%F)}
for seed in ${SEEDS:-0 1 2 3 4 5 6}; do
  [ -n "${SUMMARY_ONLY:-}" ] && break # SUMMARY_ONLY=1: summarise today's runs again
  SEED=$seed TAG="seed$seed-$date" ONLY="${ONLY:-bp pc}" bash bench/pcx-fashion-mlp.sh > /dev/null
done
python3 - "$date" ${SEEDS:-0 1 2 3 4 5 6} <<'PY'
import json, os, statistics, sys
date, seeds = sys.argv[1], sys.argv[2:]
lines = ["| algorithm | seeds | test acc, last epoch: mean ± sd | test acc, best validation epoch: mean ± sd | best test epoch: mean ± sd | PCX's avg5: best test epoch, best 5 of 7 seeds | s/epoch (median) | epoch vs BP | per seed (last epoch) |", "|---|---|---|---|---|---|---|---|---|"]
bp_epoch = None
for name in ("bp", "pc", "ipc"):
    runs = [json.load(open(p)) for s in seeds if os.path.exists(p := f"bench/results/pcx/{name}-seed{s}-{date}.json")]
    if not runs: continue
    last = [100 * m["final_test_accuracy"] for m in runs]
    best = [100 * m.get("best_test_accuracy", float("nan")) for m in runs]  # nan under VALIDATION=0: no epoch is picked
    peak = [100 * max(e["test_accuracy"] for e in m["epochs"]) for m in runs]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    avg5 = f"{statistics.mean(sorted(peak)[2:]):.2f}%" if len(runs) == 7 else "—"  # PCX: numpy.sort(best)[2:], of 7 seeds
    epoch = statistics.median(e["seconds"] for m in runs for e in m["epochs"])  # every epoch of every seed
    bp_epoch = bp_epoch or (epoch if name == "bp" else None)
    ratio = f"{epoch / bp_epoch:.2f}x" if bp_epoch else "—"
    lines.append(f"| {name} | {len(runs)} | {statistics.mean(last):.2f}% ± {sd(last):.2f} | {statistics.mean(best):.2f}% ± {sd(best):.2f} | {statistics.mean(peak):.2f}% ± {sd(peak):.2f} | {avg5} | {epoch:.2f} | {ratio} | {', '.join(f'{x:.2f}' for x in last)} |")
open(f"bench/results/pcx/seeds-{date}.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
