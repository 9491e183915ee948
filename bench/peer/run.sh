#!/usr/bin/env bash
# predcode and PyTorch on the same machine, in one run, same models, batch, eta and n.
# Installs Debian's python3-torch when missing (never needed by the build or the tests).
# Output: bench/results/peer-<date>.json with both sides and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "installing Debian's python3-torch (CPU) for the comparison..." >&2
  apt-get install -y -qq python3-torch >/dev/null
fi
# Debian's torch calls the system libblas.so.3 (BLAS_INFO=generic); without OpenBLAS that is the slow
# reference BLAS, which would flatter predcode. Installing OpenBLAS switches the alternative.
if ! readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu | grep -q openblas; then
  apt-get install -y -qq libopenblas0-pthread >/dev/null
fi
echo "PyTorch's BLAS: $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu)" >&2
threads=${THREADS:-$(nproc)}
steps=${STEPS:-20}
warmup=${WARMUP:-10}
day=$(date +%Y-%m-%d)
mkdir -p bench/results
./predcode bench --model example-cnn,mlp --algorithm strict,fixedpred,backprop --batch-size 300 --threads "$threads" \
  --steps "$steps" --warmup "$warmup" --eta 0.1 --n 20 --profile --json "bench/results/predcode-$day.json"
"$PY" bench/peer/torch_step.py --threads "$threads" --steps "$steps" > "bench/results/pytorch-$day.jsonl"
"$PY" bench/peer/compare.py "bench/results/predcode-$day.json" "bench/results/pytorch-$day.jsonl" "bench/results/peer-$day.json"
