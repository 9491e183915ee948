#!/usr/bin/env python3
"""Dev-only check that a predcode checkpoint loads into the equivalent torch.nn.Sequential.

Loads the run with python/predcode_torch.py (the Sequential from model.json, model.safetensors with
load_state_dict(strict=True)), evaluates Fashion-MNIST's test set in the file
order, and compares with `predcode eval`. Usage:
    bench/peer/check_checkpoint.py runs/fashion-backprop [/usr/share/datasets/fashion-mnist]
"""
import gzip, json, os, struct, subprocess, sys
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from predcode_torch import load  # noqa: E402


def idx(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def main():
    run = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    model = load(run)
    x = idx(os.path.join(data, "t10k-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    y = idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz")).long()
    with torch.no_grad():
        logits = model(x)
    torch_acc = (logits.argmax(1) == y).float().mean().item()
    torch_loss = nn.functional.cross_entropy(logits, y).item()
    ours = json.loads(subprocess.check_output(["./predcode", "eval", "--checkpoint", run, "--data", "fashion-mnist:" + data, "--json"]))
    print(f"PyTorch: accuracy {torch_acc:.4f} loss {torch_loss:.6f}; predcode eval: accuracy {ours['accuracy']:.4f} loss {ours['loss']:.6f}")
    ok = abs(torch_acc - ours["accuracy"]) <= 2e-4 and abs(torch_loss - ours["loss"]) <= 1e-4 * max(1, abs(torch_loss))
    print("checkpoint loads into torch.nn.Sequential and agrees" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
