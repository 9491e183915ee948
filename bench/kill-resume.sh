#!/usr/bin/env bash
# Kills a training run with SIGKILL at random moments, resumes it each time, and checks what a user
# relies on after every kill: the checkpoint loads and evaluates, metrics.csv has no step twice, no
# temporary file is left once the next run starts, and the run finally completes with exit 0.
#   bash bench/kill-resume.sh [KILLS] [SEED]     (default 20 kills, seed 1; about 2 minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}; seed=${2:-1}
RANDOM=$seed
out=$(mktemp -d)/run
args=(train --epochs 25 --batch-size 16 --quiet --out "$out")
./predcode backends >/dev/null || exit 1   # builds once, so the kills hit training, not the build
bad=0; killed=0
for ((k = 1; k <= kills; k++)); do
  extra=(--overwrite); [ -f "$out/checkpoint.safetensors" ] && extra=(--resume)  # a kill may leave model.safetensors alone
  ./predcode "${args[@]}" "${extra[@]}" >/dev/null 2>"$out.err" &
  pid=$!
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"; sleep $((RANDOM % 3))
  if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
  wait "$pid" 2>/dev/null
  pkill -9 -f "predcode-cli.*--out $out" 2>/dev/null  # the JVM under the launcher script
  sleep 0.2
  if [ -f "$out/checkpoint.safetensors" ]; then
    ./predcode eval --checkpoint "$out" --json >/dev/null 2>"$out.eval" || { echo "kill $k: checkpoint does not evaluate: $(cat "$out.eval")"; bad=$((bad + 1)); }
    dups=$(tail -n +2 "$out/metrics.csv" | cut -d, -f1 | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] || { echo "kill $k: metrics.csv repeats $dups steps"; bad=$((bad + 1)); }
  fi
done
./predcode "${args[@]}" --resume >/dev/null 2>"$out.err"; rc=$?
[ $rc -eq 0 ] || { echo "final resume exited $rc: $(cat "$out.err")"; bad=$((bad + 1)); }
leftover=$(find "$out" -name '*.tmp' | wc -l)
[ "$leftover" -eq 0 ] || { echo "$leftover temporary files left after the final run"; bad=$((bad + 1)); }
dups=$(tail -n +2 "$out/metrics.csv" | cut -d, -f1 | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || { echo "final metrics.csv repeats $dups steps"; bad=$((bad + 1)); }
echo "kill-resume: $kills runs, $killed killed with SIGKILL, $bad problems; final run exit $rc, $(($(wc -l < "$out/metrics.csv") - 1)) metric rows"
[ $bad -eq 0 ]
