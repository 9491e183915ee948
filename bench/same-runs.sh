#!/usr/bin/env bash
# Whether two builds of the CLI train the same runs: for a change meant to leave behaviour alone (a refactor), the
# same training scenarios with each build's predcode-cli.jar, compared on what a user keeps: every model and
# checkpoint's tensors, the checkpoints' training state (timings aside), metrics.csv (the ms column aside),
# metrics.json (timings aside), grid.json and seeds.json, and every line printed (times aside).
#   bash bench/same-runs.sh OLD.jar NEW.jar     (each jar with its lib/ beside it, as modules/predcode-cli/target holds them)
# Scenarios, all on digits, 1 thread: STRICT; PC stopped inside an epoch by --max-steps and resumed, checkpoints every
# 7 steps; backprop rolled back after collapses; a divergence; FIXED_PRED with the monitor, the cosine schedule and
# whole batches; a halving grid; iPC over two seeds; a collapse that stops; PC on Spark local[2] stopped and resumed.
# About 2 minutes. Needs python3 (for the safetensors headers). Ends "same-runs: same" or lists what differs, exit 1.
set -uo pipefail
[ $# -eq 2 ] && [ -f "$1" ] && [ -f "$2" ] || { echo "usage: bash bench/same-runs.sh OLD.jar NEW.jar" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
jars=("$(readlink -f "$1")" "$(readlink -f "$2")")
source "$here/bin/find-jdk.sh"
predcode_find_jdk || exit 1
JAVA="$JAVA_HOME/bin/java"
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

scenarios() { # $1: the jar; run in the current folder
  local java=("$JAVA" --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -jar "$1")
  t() { local name=$1; shift; "${java[@]}" train --quiet --threads 1 "$@" > "$name.out" 2>&1; echo "rc=$?" >> "$name.out"; }
  t A --epochs 3 --out A
  t B1 --algorithm pc --epochs 2 --checkpoint-every 7 --max-steps 50 --out B
  t B2 --algorithm pc --epochs 2 --checkpoint-every 7 --resume --out B
  t C --algorithm backprop --epochs 6 --lr 0.5 --optimizer sgd --on-collapse rollback --patience 1 --collapse-margin 0.01 --out C
  t D --monitor-every 5 --epochs 1 --algorithm fixedpred --lr-schedule cosine --score-whole-batches --out D
  t E --grid eta=0.1,0.05 --epochs 2 --halving 2 --out E
  t F --seeds 0-1 --epochs 1 --algorithm ipc --validation 0 --out F
  t G --epochs 2 --lr 1e30 --optimizer sgd --algorithm backprop --out G
  t H --epochs 3 --patience 1 --collapse-margin 0.01 --lr 0.5 --optimizer sgd --algorithm backprop --out H
  t S1 --spark 'local[2]' --algorithm pc --epochs 2 --batch-size 64 --checkpoint-every 5 --max-steps 12 --out S
  t S2 --spark 'local[2]' --algorithm pc --epochs 2 --batch-size 64 --checkpoint-every 5 --resume --out S
}

# What is compared, one line a file, into $1: tensors and training state by hash, text normalised.
kept() {
  python3 - "$1" <<'EOF'
import hashlib, json, os, re, struct, sys
out = open(sys.argv[1], 'w')
timing = re.compile(r'("?(seconds|ms_per_step|data_wait_fraction|wall_seconds)"?\s*:\s*)[-0-9.eE+]+|NaN')
for root, _, files in sorted(os.walk('.')):
    for f in sorted(files):
        p = os.path.join(root, f)
        if f.endswith('.safetensors'):
            b = open(p, 'rb').read()
            n = struct.unpack('<Q', b[:8])[0]
            header = json.loads(b[8:8 + n])
            meta = header.pop('__metadata__', {})
            for k in list(meta):
                meta[k] = timing.sub(lambda m: (m.group(1) or '') + 'X', meta[k].replace('\\"', '"'))
            digest = hashlib.sha1(b[8 + n:] + json.dumps(header, sort_keys=True).encode() + json.dumps(meta, sort_keys=True).encode())
            out.write(f'{p} {digest.hexdigest()[:16]}\n')
        elif f == 'metrics.csv':
            rows = [','.join(r.split(',')[:4] + r.split(',')[5:]) for r in open(p).read().splitlines()]
            out.write(f'{p} {hashlib.sha1(chr(10).join(rows).encode()).hexdigest()[:16]}\n')
        elif f.endswith('.out') or f in ('metrics.json', 'grid.json', 'seeds.json', 'halving.json'):
            text = open(p).read()
            text = re.sub(r'[0-9]+\.[0-9]+ s\b', 'X s', text)
            text = re.sub(r'[0-9.]+ ms/step', 'X ms/step', text)
            text = re.sub(r'data wait [0-9.]+%', 'data wait X%', text)
            text = timing.sub(lambda m: (m.group(1) or '') + 'X', text)
            out.write(f'{p} {hashlib.sha1(text.encode()).hexdigest()[:16]}\n')
EOF
}

for side in old new; do
  jar=${jars[0]}; [ $side = new ] && jar=${jars[1]}
  mkdir -p "$work/$side" && (cd "$work/$side" && scenarios "$jar" && kept "$work/$side.txt")
done
if diff "$work/old.txt" "$work/new.txt" > "$work/diff.txt"; then
  echo "same-runs: same ($(wc -l < "$work/new.txt") files: models, checkpoints, metrics and lines)"
else
  echo "same-runs: DIFFERENT"; cat "$work/diff.txt"; exit 1
fi
