#!/usr/bin/env bash
# Online learning under load (ServingSoak): 8 threads predict while a trainer publishes after every
# step; every answer checked bit for bit; off-heap memory from Native Memory Tracking. Arguments:
# [predictions=1000000] [publishes=10000] [threads=8] [closes=10000]; then closes racing with running calls. Prints two JSON lines.
# SOAK_BACKEND=cuda soaks the CUDA backend (PREDCODE_CUDA_DRIVER may name the simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/build.sh
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -XX:NativeMemoryTracking=summary -Dpredcode.soak.backend="${SOAK_BACKEND:-cpu}" -cp "$cp" io.predcode.core.ServingSoak "$@"
