#!/usr/bin/env bash
# predcode and PyTorch (float32 and float64) on the same 200 Fashion-MNIST steps from the same initial
# parameters, for every algorithm and both losses (bench/peer/trajectory.py). Installs Debian's
# python3-torch and dataset-fashion-mnist when missing (never needed by the build or the tests).
# Output: bench/results/trajectory-<date>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || apt-get install -y -qq python3-torch >/dev/null
[ -d /usr/share/datasets/fashion-mnist ] || apt-get install -y -qq dataset-fashion-mnist >/dev/null
"$PY" bench/peer/trajectory.py --steps "${STEPS:-200}" "$@" > "bench/results/trajectory-$(date +%Y-%m-%d).jsonl"
