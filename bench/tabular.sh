#!/usr/bin/env bash
# Tables: scikit-learn's breast-cancer (569 x 30, 2 classes) and wine (178 x 13, 3 classes) data as CSV files, one
# fixed 80/20 split each (NumPy's default_rng(0)), trained by predcode with --model mlp:64-64 (features standardized in
# the model) with STRICT, PC and backprop over 5 seeds, and, for reference, scikit-learn's MLPClassifier(64, 64) and
# LogisticRegression on the same split, standardized by StandardScaler.
# Needs Debian's python3-sklearn (its data files; apt-get install python3-sklearn) and /usr/bin/python3 with numpy.
# EPOCHS (30), OUT (the tables and runs; by default a temporary folder, removed at the end). Prints a line per data set and algorithm.
set -euo pipefail
cd "$(dirname "$0")/.."
data=/usr/lib/python3/dist-packages/sklearn/datasets/data
[ -f "$data/wine_data.csv" ] || { echo "tabular.sh: $data/wine_data.csv not found; apt-get install python3-sklearn" >&2; exit 2; }
if [ -n "${OUT:-}" ]; then out=$OUT; else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
epochs=${EPOCHS:-30}
/usr/bin/python3 - "$data" "$out" <<'EOF'
import numpy as np, os, sys, warnings
data, out = sys.argv[1:]
for name in ("breast_cancer", "wine"):
    # scikit-learn's files start with a line of their own (samples, features, class names), then rows of features and a class index.
    lines = open(f"{data}/{'wine_data' if name == 'wine' else name}.csv").read().strip().split("\n")
    meta = lines[0].split(","); n, f, classes = int(meta[0]), int(meta[1]), meta[2:]
    a = np.array([l.split(",") for l in lines[1:]], dtype=float)
    x, y = a[:, :f], a[:, f].astype(int)
    p = np.random.default_rng(0).permutation(n); held = round(0.2 * n)
    os.makedirs(f"{out}/{name}", exist_ok=True)
    for part, idx in (("train", p[held:]), ("test", p[:held])):
        with open(f"{out}/{name}/{part}.csv", "w") as fh:
            fh.write(",".join(f"f{j}" for j in range(f)) + ",label\n")
            for i in idx: fh.write(",".join(str(float(v)) for v in x[i]) + "," + classes[y[i]] + "\n")
    try:
        from sklearn.preprocessing import StandardScaler
        from sklearn.neural_network import MLPClassifier
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        continue
    warnings.filterwarnings("ignore")
    s = StandardScaler().fit(x[p[held:]]); xtr, xte, ytr, yte = s.transform(x[p[held:]]), s.transform(x[p[:held]]), y[p[held:]], y[p[:held]]
    accs = [MLPClassifier((64, 64), max_iter=200, random_state=k).fit(xtr, ytr).score(xte, yte) for k in range(5)]
    lr = LogisticRegression(max_iter=1000).fit(xtr, ytr).score(xte, yte)
    print(f"{name}: scikit-learn MLPClassifier(64, 64), 5 seeds: {np.mean(accs) * 100:.2f}% ± {np.std(accs, ddof=1) * 100:.2f}; LogisticRegression {lr * 100:.2f}%")
EOF
for d in breast_cancer wine; do
    for a in strict pc backprop; do
        ./predcode train --data "csv:$out/$d" --model mlp:64-64 --algorithm "$a" --epochs "$epochs" --validation 0 --seeds 0-4 \
            --out "$out/run-$d-$a" --quiet > "$out/log-$d-$a.txt"
        echo "$d: predcode $a, $(grep "mean ± sd" "$out/log-$d-$a.txt" | sed 's/;.*//')"
    done
done
