#!/usr/bin/env bash
# Runs ON the GPU machine from the repository root, after bench/gpu/prepare.sh ran here:
#   conformance suite and golden cases on CUDA (and against the CPU), then the step benchmarks
#   (example-cnn and mlp at batch 300 and 4096, every algorithm) and the kernel benchmarks.
# Each part has a time limit; results go to $OUT (or /tmp/predcode-gpu); a short table comes last.
set -uo pipefail
JAVA=${JAVA:-java}
out=${OUT:-/tmp/predcode-gpu}
mkdir -p "$out"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$(dirname "$(find / -name 'libcublas.so.13' 2>/dev/null | head -n 1)" 2>/dev/null)"
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
find / -name 'libcublas.so*' -o -name 'libnvrtc.so*' 2>/dev/null | head -n 5
run() { "$JAVA" --enable-native-access=ALL-UNNAMED -Djava.awt.headless=true "$@"; }
cli() { run -cp ".device/lib/*" io.predcode.cli.Main "$@"; }
echo "== backends"; cli backends | tee "$out/backends.txt"
echo "== conformance and golden (CUDA, and CUDA vs CPU)"
cp=$(ls .device/test/predcode-*-tests.jar .device/lib/*.jar | tr '\n' ':')
timeout 240 "$JAVA" --enable-native-access=ALL-UNNAMED -Dpredcode.golden.dir=.device/golden -jar .device/test/junit-platform-console-standalone.jar \
  execute --class-path "$cp" --select-class io.predcode.cuda.CudaConformanceTest --select-class io.predcode.cuda.CudaAvailabilityTest \
  --select-class io.predcode.core.GoldenCaseTest --select-class io.predcode.core.CrossBackendTest --select-class io.predcode.core.EngineContractTest \
  --select-class io.predcode.core.PaperResultsTest --select-class io.predcode.core.CondensedStrictTest \
  --select-class io.predcode.cuda.CudaThreadsTest --select-class io.predcode.core.ServingTest --details=tree --disable-banner --reports-dir "$out/junit" 2>&1 | tail -n 80 | tee "$out/tests.txt"
echo "== step benchmarks"
timeout 200 cli bench --backend cuda,cpu --model example-cnn,mlp --batch-size 300,4096 --steps 10 --warmup 3 --warmup-seconds 0.5 --json "$out/bench-steps.json" 2>&1 | tee "$out/bench-steps.txt"
echo "== kernel benchmarks"
timeout 60 cli bench --ops --backend cuda --json "$out/bench-ops.json" 2>&1 | tee "$out/bench-ops.txt"
echo "== summary"
grep -E "tests (successful|failed|aborted|skipped)" "$out/tests.txt"
grep -E "^(cuda|cpu) " "$out/bench-steps.txt" | sort
