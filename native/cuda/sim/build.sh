#!/usr/bin/env bash
# Builds the CUDA host simulator: build.sh OUT_DIR  ->  OUT_DIR/libpredcode-cudasim.so
# Needs g++ and the CUDA toolkit's cuda.h (CUDA_HOME, else /usr/local/cuda); without them it says so
# and builds nothing (the CUDA tests then skip with that reason).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT_DIR}
include=${CUDA_HOME:-/usr/local/cuda}/include
mkdir -p "$out"
if ! command -v g++ >/dev/null || [ ! -f "$include/cuda.h" ]; then
  echo "CUDA simulator not built: needs g++ and $include/cuda.h" | tee "$out/NOT-BUILT"
  exit 0
fi
rm -f "$out/NOT-BUILT"
# The kernel table: every __global__ function of predcode.cu, in source order.
grep -oE '__global__ void [A-Za-z_0-9]+' "$here/../predcode.cu" | sed -E 's/.* (.*)/KERNEL(\1)/' > "$out/kernels.inc"
g++ -std=c++17 -O2 -g -U_FORTIFY_SOURCE -fPIC -shared -Wall -Wextra -Werror -Wno-sign-compare -Wno-unused-function -Wno-unused-parameter \
  -I"$include" -I"$out" -I"$here" -o "$out/libpredcode-cudasim.so" "$here/simulator.cpp" "$here/kernels.cpp"

