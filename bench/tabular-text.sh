#!/usr/bin/env bash
# Tables as exports have them, text columns and gaps: three of R's own data sets written as CSV files by R, one fixed
# 80/20 split each (NumPy's default_rng(0)), trained by predcode with --model mlp:64-64 (text columns as categories, gaps
# filled with the training mean, features standardized in the model) with STRICT, PC (predcode's defaults, and PCX's
# settings) and backprop over 5 seeds, and, for
# reference, scikit-learn on the same split with the same treatment (OneHotEncoder ignoring unseen values, SimpleImputer
# with the mean, StandardScaler): MLPClassifier(64, 64) over 5 seeds and LogisticRegression.
#   - titanic: R's Titanic table as its 2,201 passengers; Class, Sex and Age, all text; Survived (No, Yes).
#   - infert: 248 women of R's infert; education (text), age, parity, induced, spontaneous; case (0, 1).
#   - airquality: 153 days of New York's air in 1973; Ozone (37 missing), Solar.R (7 missing), Wind, Temp; Month (5-9).
# Needs R (apt-get install r-base-core) and Debian's python3-sklearn and python3-pandas for the reference.
# EPOCHS (30), OUT (the tables and runs; by default a temporary folder, removed at the end). Prints a line per data set and algorithm.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v Rscript >/dev/null || { echo "tabular-text.sh: Rscript not found; apt-get install r-base-core" >&2; exit 2; }
if [ -n "${OUT:-}" ]; then out=$OUT; else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
mkdir -p "$out"
epochs=${EPOCHS:-30}
Rscript -e '
out <- commandArgs(TRUE)[1]
t <- as.data.frame(Titanic)
write.csv(t[rep(seq_len(nrow(t)), t$Freq), c("Class", "Sex", "Age", "Survived")], file.path(out, "titanic.csv"), row.names = FALSE, quote = FALSE)
write.csv(infert[, c("education", "age", "parity", "induced", "spontaneous", "case")], file.path(out, "infert.csv"), row.names = FALSE, quote = FALSE)
write.csv(airquality[, c("Ozone", "Solar.R", "Wind", "Temp", "Month")], file.path(out, "airquality.csv"), row.names = FALSE, quote = FALSE, na = "NA")
' "$out"
/usr/bin/python3 - "$out" <<'EOF'
import numpy as np, os, sys, warnings
out = sys.argv[1]
labels = {"titanic": "Survived", "infert": "case", "airquality": "Month"}
for name, label in labels.items():
    lines = open(f"{out}/{name}.csv").read().strip().split("\n")
    n = len(lines) - 1
    p = np.random.default_rng(0).permutation(n); held = round(0.2 * n)
    os.makedirs(f"{out}/{name}", exist_ok=True)
    for part, idx in (("train", p[held:]), ("test", p[:held])):
        with open(f"{out}/{name}/{part}.csv", "w") as fh:
            fh.write(lines[0] + "\n")
            for i in idx: fh.write(lines[1 + i] + "\n")
    try:
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
    except ImportError:
        continue
    warnings.filterwarnings("ignore")
    tr, te = (pd.read_csv(f"{out}/{name}/{part}.csv") for part in ("train", "test"))
    text = [c for c in tr.columns if c != label and tr[c].dtype == object]
    numbers = [c for c in tr.columns if c != label and c not in text]
    def model(classifier):
        prepare = ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text), ("numbers", SimpleImputer(strategy="mean"), numbers)])
        return make_pipeline(prepare, StandardScaler(), classifier)
    xtr, ytr, xte, yte = tr.drop(columns=label), tr[label], te.drop(columns=label), te[label]
    accs = [model(MLPClassifier((64, 64), max_iter=200, random_state=k)).fit(xtr, ytr).score(xte, yte) for k in range(5)]
    lr = model(LogisticRegression(max_iter=1000)).fit(xtr, ytr).score(xte, yte)
    print(f"{name}: scikit-learn MLPClassifier(64, 64), 5 seeds: {np.mean(accs) * 100:.2f}% ± {np.std(accs, ddof=1) * 100:.2f}; LogisticRegression {lr * 100:.2f}%")
EOF
for d in titanic infert airquality; do
    label=$(case $d in titanic) echo Survived;; infert) echo case;; airquality) echo Month;; esac)
    # PC twice: with predcode's defaults (cross-entropy, eta 0.1, n 20, plain SGD on the beliefs), and as PCX configures
    # it for its MLP (bench/pcx-config.sh: squared error, T = 5, eta 0.026, momentum 0.1; lr 0.0003).
    for a in strict pc pc-pcx backprop; do
        flags=(--algorithm "$a")
        [ "$a" = pc-pcx ] && flags=(--algorithm pc --loss mse --n 5 --eta 0.026 --belief-optimizer sgd:0.1 --lr 0.0003)
        # Exit 3: a seed stopped by the collapse watch (training accuracy well below its best for 3 epochs); said, not fatal.
        code=0
        ./predcode train --data "csv:$out/$d:$label" --model mlp:64-64 "${flags[@]}" --epochs "$epochs" --validation 0 --seeds 0-4 \
            --out "$out/run-$d-$a" --quiet > "$out/log-$d-$a.txt" || code=$?
        stopped=$(grep -c "^stopped: collapse" "$out/log-$d-$a.txt" || true)
        echo "$d: predcode $a, $(grep "mean ± sd" "$out/log-$d-$a.txt" | sed 's/;.*//')$([ "$stopped" -gt 0 ] && echo "; $stopped of 5 seeds stopped by the collapse watch")"
        [ "$code" -eq 0 ] || [ "$code" -eq 3 ] || exit "$code"
    done
done
