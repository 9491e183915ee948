#!/usr/bin/env bash
# How long a Spark run takes to stop on SIGTERM, with barrier jobs as long as an epoch (--spark-job-seconds 86400, as
# before that option) and bounded by --spark-job-seconds S: for each wait, a run of example-cnn STRICT on Fashion-MNIST
# at batch 4096 on local[2] (13 steps an epoch, about 0.5 s a step on 2 cores) is sent SIGTERM that many seconds after
# it started; the time to its exit (the job in progress, then the checkpoint) and where it stopped are printed.
#   bash bench/spark-stop.sh [S] [WAITS...]     (default 3, waits 21 23.5 26 28.5 31 33.5; about 7 minutes)
# Needs Fashion-MNIST (bench/fashion-mnist.sh says how to get it).
set -uo pipefail
cd "$(dirname "$0")/.."
bound=${1:-3}; shift || true
waits=("$@"); [ ${#waits[@]} -gt 0 ] || waits=(21 23.5 26 28.5 31 33.5)
./predcode backends >/dev/null || exit 1   # builds once, so the waits time training, not the build
dir=$(mktemp -d)
for w in "${waits[@]}"; do
  for s in 86400 "$bound"; do
    out=$dir/run-$s
    rm -rf "$out"
    ./predcode train --data fashion-mnist --model example-cnn --algorithm strict --batch-size 4096 --epochs 20 --quiet \
      --spark 'local[2]' --spark-job-seconds "$s" --out "$out" >"$out.log" 2>&1 &
    pid=$!
    sleep "$w"
    t0=$(date +%s.%N)
    kill -TERM $pid
    wait $pid; rc=$?
    t1=$(date +%s.%N)
    where=$(grep -o "holds the run [^:]*" "$out.log" || tail -1 "$out.log")
    printf 'SIGTERM at %5s s, --spark-job-seconds %5s: exit %s after %.2f s, %s\n' "$w" "$s" "$rc" "$(echo "$t1 - $t0" | bc)" "$where"
  done
done
rm -rf "$dir"
