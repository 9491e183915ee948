#!/usr/bin/env bash
# A long Spark run as a user makes it, on a loopback standalone cluster (a Master and 2 Workers of 1
# core, bound to 127.0.0.1, started and stopped here) and again on local[2], checking that both give
# the same per-step losses and the same checkpoint tensors, bit for bit. Default: mlp STRICT on
# Fashion-MNIST (Debian's dataset-fashion-mnist), batch 600, 10 epochs (900 barrier steps in 45
# jobs), about 4 minutes on 2 cores. Other train options replace the defaults: bench/spark-soak.sh --epochs 3 ...
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/spark-java.sh
[ $# -gt 0 ] || set -- --model mlp --data fashion-mnist --algorithm strict --batch-size 600 --epochs 10 --optimizer sgd --lr 0.07 --momentum 0.9
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
spark_java io.predcode.spark.SparkSoak ./predcode "$out" --quiet "$@" | tee "bench/results/spark-soak-${TAG:-$(date +%F)}.txt"
