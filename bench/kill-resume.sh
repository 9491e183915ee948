#!/usr/bin/env bash
# Stops a training run at random moments, with SIGKILL, SIGTERM or SIGINT (Ctrl-C), resumes it each time, and checks what
# a user relies on after every stop: SIGTERM and SIGINT end it with 143 and 130, the checkpoint loads and evaluates,
# metrics.csv has no step twice, no temporary file is left once the next run starts, and the run finally completes
# with exit 0, with every step once and the model of a run never stopped, bit for bit. Checkpoints come every 20
# steps inside an epoch as well (--checkpoint-every 20), so most stops land inside one.
#   bash bench/kill-resume.sh [STOPS] [SEED]     (default 20 stops, seed 1; about 2 minutes)
# RESUME=bare resumes as a user now does, with `train --resume --out DIR` alone (the run's settings from its checkpoint);
# THREADS=N trains on N CPU threads (default: all cores), which a bare resume must take from the checkpoint to end equal;
# BATCH and EPOCHS change the run (default 16 and 40; at batch 16 digits' sums are not split, at 64 they are:
# `THREADS=1 RESUME=bare BATCH=64 EPOCHS=80 bash bench/kill-resume.sh` on a machine of 2 cores or more).
# EXTRA adds train options to every run, e.g. EXTRA="--spark local[2]" (a bare resume takes Spark's from the checkpoint
# too: it goes on where the run trained); DELAY is the least seconds before a stop (default 1; Spark takes about 5 s to
# start).
set -uo pipefail
set -m  # job control: a background job without it ignores SIGINT (as under nohup), and the JVM then does too
# (A shell that was itself started with SIGINT ignored, e.g. `(bash kill-resume.sh &)`, passes that on to every run: then
# the SIGINT stops end with exit 0, the run having gone on.)
cd "$(dirname "$0")/.."
stops=${1:-20}; seed=${2:-1}
RANDOM=$seed
dir=$(mktemp -d); out=$dir/run
args=(train --epochs "${EPOCHS:-40}" --batch-size "${BATCH:-16}" --n 200 --checkpoint-every 20 --threads "${THREADS:-0}" --quiet ${EXTRA:-})  # about 25 s of training, 0.6 s an epoch
bare=(train --resume --quiet)
./predcode backends >/dev/null || exit 1   # builds once, so the stops hit training, not the build
./predcode "${args[@]}" --out "$dir/never-stopped" >/dev/null || { echo "the reference run failed"; exit 1; }
bad=0; stopped=0; inside=0
for ((k = 1; k <= stops; k++)); do
  command=("${args[@]}" --overwrite)
  if [ -f "$out/checkpoint.safetensors" ]; then  # a kill may leave model.safetensors alone
    if [ "${RESUME:-full}" = bare ]; then command=("${bare[@]}"); else command=("${args[@]}" --resume); fi
  fi
  ./predcode "${command[@]}" --out "$out" >"$out.log" 2>"$out.err" &
  pid=$!
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"; sleep $((${DELAY:-1} + RANDOM % 5))  # the JVM takes about 1.5 s to start training
  signal=$(echo KILL TERM INT | cut -d' ' -f$((RANDOM % 3 + 1)))
  if kill -s "$signal" "$pid" 2>/dev/null; then stopped=$((stopped + 1)); fi
  wait "$pid" 2>/dev/null; rc=$?
  pkill -9 -f "predcode-cli.*--out $out" 2>/dev/null  # a JVM a SIGTERM or SIGINT left running would be a failure below
  case "$signal:$rc" in
    KILL:*|TERM:143|INT:130|*:0) ;;
    *) echo "stop $k: SIG$signal ended the run with exit $rc: $(tail -1 "$out.err")"; bad=$((bad + 1)) ;;
  esac
  grep -q "holds the run at step" "$out.log" && inside=$((inside + 1))
  echo "stop $k: SIG$signal, exit $rc$(grep -o '; .*holds the run [^:]*' "$out.log" | sed 's/.*holds the run/, saved/')"
  sleep 0.2
  if [ -f "$out/checkpoint.safetensors" ]; then
    ./predcode eval --checkpoint "$out" --json >/dev/null 2>"$out.eval" || { echo "stop $k: checkpoint does not evaluate: $(cat "$out.eval")"; bad=$((bad + 1)); }
    dups=$(tail -n +2 "$out/metrics.csv" | cut -d, -f1 | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] || { echo "stop $k: metrics.csv repeats $dups steps"; bad=$((bad + 1)); }
  fi
done
if [ "${RESUME:-full}" = bare ]; then command=("${bare[@]}"); else command=("${args[@]}" --resume); fi
./predcode "${command[@]}" --out "$out" >/dev/null 2>"$out.err"; rc=$?
[ $rc -eq 0 ] || { echo "final resume exited $rc: $(cat "$out.err")"; bad=$((bad + 1)); }
leftover=$(find "$out" -name '*.tmp' | wc -l)
[ "$leftover" -eq 0 ] || { echo "$leftover temporary files left after the final run"; bad=$((bad + 1)); }
steps=$(tail -n +2 "$out/metrics.csv" | cut -d, -f1 | sort -u | wc -l); expected=$(($(wc -l < "$dir/never-stopped/metrics.csv") - 1))
[ "$steps" -eq "$expected" ] && [ "$(($(wc -l < "$out/metrics.csv") - 1))" -eq "$expected" ] || { echo "final metrics.csv has $steps distinct steps, not $expected once each"; bad=$((bad + 1)); }
cmp -s "$out/model.safetensors" "$dir/never-stopped/model.safetensors" || { echo "the final model differs from the run never stopped"; bad=$((bad + 1)); }
echo "kill-resume: $stops runs, $stopped stopped (SIGKILL, SIGTERM or SIGINT), $inside stopped by SIGTERM or SIGINT saving inside an epoch, $bad problems; final run exit $rc, $expected steps, model equal to the run never stopped: $(cmp -s "$out/model.safetensors" "$dir/never-stopped/model.safetensors" && echo yes || echo no)"
if [ $bad -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$dir"; else echo "runs kept in $dir"; fi  # KEEP=1 keeps them anyway
[ $bad -eq 0 ]
