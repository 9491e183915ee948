#!/usr/bin/env bash
# JMH micro-benchmarks (GEMM overhead, elementwise bandwidth). Arguments go to JMH, e.g.
#   bench/jmh.sh GemmBenchmark -p shape=512x512x512
# Results as JSON: bench/results/jmh-<date>.json
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
mkdir -p bench/results
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$cp" org.openjdk.jmh.Main -f 1 -wi 3 -w 1s -i 5 -r 1s \
  -rf json -rff "bench/results/jmh-$(date +%Y-%m-%d).json" "$@"
