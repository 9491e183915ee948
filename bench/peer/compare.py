#!/usr/bin/env python3
"""Joins predcode bench JSON and PyTorch JSONL records; prints and writes the ratios (speed-up = torch / predcode)."""
import json, sys

ours = {(r["model"], r["algorithm"]): r for r in json.load(open(sys.argv[1]))["records"] if "median_ms_per_step" in r}
theirs = {(r["model"], r["algorithm"]): r for r in map(json.loads, open(sys.argv[2]))}
rows = []
print(f"{'model':12} {'algorithm':10} {'predcode ms':>12} {'pytorch ms':>12} {'speed-up':>9}")
for key in sorted(set(ours) & set(theirs)):
    o, t = ours[key]["median_ms_per_step"], theirs[key]["median_ms_per_step"]
    rows.append({"model": key[0], "algorithm": key[1], "predcode_ms": o, "pytorch_ms": t, "speedup": t / o, "torch": theirs[key]["torch"]})
    print(f"{key[0]:12} {key[1]:10} {o:12.2f} {t:12.2f} {t / o:8.1f}x")
json.dump({"rows": rows}, open(sys.argv[3], "w"), indent=2)
