#!/usr/bin/env bash
# Runs ON the GPU machine after bench/gpu/check.sh (same JAVA and .device): predcode's CUDA backend against the same
# steps in the machine's PyTorch on the same GPU (bench/peer/torch_step.py --device cuda), rounds alternating who goes
# first, as bench/peer/run.sh and bench/peer/pcx-ratio.sh do on the CPU:
#   - Torch2PC's algorithms (STRICT, FIXED_PRED; n 20, eta 0.1) and backprop on its example CNN and the MLP, batch 300;
#   - PCX's PC (T = 5) and iPC (T = 8) against backprop on PCX's MLP, batch 128, squared error.
# Prints per configuration each side's median step time and the speed-up (PyTorch's time / predcode's); writes
# $OUT/peer-gpu.json. ROUNDS (3), STEPS (20). PY: a python3 with torch (the machine's own, else /opt/torch/.venv).
# A dry run here, on the CUDA simulator against PyTorch on the CPU: PREDCODE_CUDA_DRIVER=.../libpredcode-cudasim.so
# PY=/usr/bin/python3 TORCH_DEVICE=cpu BATCH=8 ROUNDS=1 STEPS=1 WARMUP=1.
set -uo pipefail
JAVA=${JAVA:-java}
out=${OUT:-/tmp/predcode-gpu}
rounds=${ROUNDS:-3} steps=${STEPS:-20} warmup=${WARMUP:-10} batch=${BATCH:-300}
PY=${PY:-python3}
"$PY" -c "import torch" 2>/dev/null || PY=/opt/torch/.venv/bin/python3
mkdir -p "$out/peer"
cli=("$JAVA" --enable-native-access=ALL-UNNAMED -Djava.awt.headless=true -cp ".device/lib/*" io.predcode.cli.Main)
pcx=bench/models/pcx-mlp-gelu.json
ours() {
  timeout 90 "${cli[@]}" bench --backend cuda --model example-cnn,mlp --algorithm strict,fixedpred,backprop --batch-size "$batch" --eta 0.1 --n 20 \
    --steps "$steps" --warmup "$warmup" --warmup-seconds 0.5 --json "$out/peer/t2pc-$1.json" >&2
  timeout 60 "${cli[@]}" bench --backend cuda --model "$pcx" --algorithm pc,backprop --batch-size 128 --n 5 --eta 0.026070879231635192 \
    --belief-optimizer sgd:0.1 --energy sample --loss mse --steps "$steps" --warmup "$warmup" --warmup-seconds 0.5 --json "$out/peer/pc-$1.json" >&2
  timeout 60 "${cli[@]}" bench --backend cuda --model "$pcx" --algorithm ipc --batch-size 128 --n 8 --eta 0.7996939108085619 \
    --belief-optimizer sgd:0.25 --energy sample --loss mse --steps "$steps" --warmup "$warmup" --warmup-seconds 0.5 --json "$out/peer/ipc-$1.json" >&2
  "$PY" -c 'import json, sys; parts = [json.load(open(p)) for p in sys.argv[1:-1]]; parts[0]["records"] = [r for p in parts for r in p["records"]]; json.dump(parts[0], open(sys.argv[-1], "w"))' \
    "$out/peer/t2pc-$1.json" "$out/peer/pc-$1.json" "$out/peer/ipc-$1.json" "$out/peer/predcode-$1.json"
}
theirs() {
  local torch=(timeout 120 "$PY" bench/peer/torch_step.py --device "${TORCH_DEVICE:-cuda}" --steps "$steps" --warmup 5)
  "${torch[@]}" --batch-size "$batch" > "$out/peer/pytorch-$1.jsonl"
  "${torch[@]}" --model "$pcx" --algorithm pc,backprop --batch-size 128 --n 5 --eta 0.026070879231635192 --momentum 0.1 --loss mse >> "$out/peer/pytorch-$1.jsonl"
  "${torch[@]}" --model "$pcx" --algorithm ipc --batch-size 128 --n 8 --eta 0.7996939108085619 --momentum 0.25 --loss mse >> "$out/peer/pytorch-$1.jsonl"
}
echo "PyTorch: $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "(no GPU)")')"
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) -eq 1 ]; then ours "$r"; theirs "$r"; else theirs "$r"; ours "$r"; fi
done
"$PY" bench/peer/compare.py "$out/peer" "$rounds" "$out/peer-gpu.json"
