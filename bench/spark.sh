#!/usr/bin/env bash
# Spark's per-step cost against compute, side by side in one run: one process (2 threads), local[2]
# and a standalone cluster of 2 workers x 1 core on 127.0.0.1, all at 2 partitions, for example-cnn
# and mlp under STRICT, FIXED_PRED and BACKPROP at global batches 600 and 4096. Needs Debian's
# dataset-fashion-mnist. Results: bench/results/spark-DATE.md. A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/spark-java.sh
out="bench/results/spark-${TAG:-$(date +%F)}.md"   # AVERAGE_EVERY=K: local steps averaged every K (not exact); STEPS_PER_JOB: steps per barrier job (14: an epoch at 4096)
spark_java io.predcode.spark.SparkBenchmark "$out" "${MODELS:-mlp,example-cnn}" "${ALGORITHMS:-strict,fixedpred,backprop}" "${BATCHES:-600,4096}" "${STEPS:-8}" "${AVERAGE_EVERY:-1}" "${STEPS_PER_JOB:-14}"
