#!/usr/bin/env python3
"""Joins the rounds of bench/peer/run.sh: predcode-R.json (predcode bench --json) and pytorch-R.jsonl
(torch_step.py) for R = 1..rounds in one folder. Prints and writes, per configuration, each side's
median step time over the rounds and the speed-up (PyTorch time / predcode time): the median of the
rounds' ratios, with their range.

    compare.py FOLDER ROUNDS OUT.json
"""
import json, os, statistics, sys

folder, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ours, theirs = [], []
for r in range(1, rounds + 1):
    ours.append({(x["model"], x["algorithm"]): x["median_ms_per_step"]
                 for x in json.load(open(os.path.join(folder, f"predcode-{r}.json")))["records"]
                 if "median_ms_per_step" in x and x.get("condense", "auto") == "auto"})
    theirs.append({(x["model"], x["algorithm"]): x for x in map(json.loads, open(os.path.join(folder, f"pytorch-{r}.jsonl")))})
rows = []
print(f"{'model':12} {'algorithm':10} {'predcode ms':>12} {'pytorch ms':>12} {'speed-up':>9}  rounds")
for key in sorted(set(ours[0]) & set(theirs[0])):
    o = [ours[r][key] for r in range(rounds)]
    t = [theirs[r][key]["median_ms_per_step"] for r in range(rounds)]
    ratios = [tt / oo for oo, tt in zip(o, t)]
    row = {"model": key[0], "algorithm": key[1], "predcode_ms": statistics.median(o), "pytorch_ms": statistics.median(t),
           "speedup": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios), "rounds": rounds,
           "predcode_ms_rounds": o, "pytorch_ms_rounds": t, "torch": theirs[0][key]["torch"]}
    rows.append(row)
    print(f"{key[0]:12} {key[1]:10} {row['predcode_ms']:12.2f} {row['pytorch_ms']:12.2f} {row['speedup']:8.1f}x  "
          + " ".join(f"{x:.1f}x" for x in ratios))
json.dump({"rounds": rounds, "rows": rows}, open(out, "w"), indent=2)
