#!/usr/bin/env python3
"""Dev-only check that a predcode checkpoint loads into the equivalent torch.nn.Sequential.

Builds the Sequential from model.json, loads model.safetensors with load_state_dict(strict=True)
(a plain reader: Debian has no safetensors package), evaluates Fashion-MNIST's test set in the file
order, and compares with `predcode eval`. Usage:
    bench/peer/check_checkpoint.py runs/fashion-backprop [/usr/share/datasets/fashion-mnist]
"""
import gzip, json, os, struct, subprocess, sys
import torch
import torch.nn as nn


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        data = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32)
        out[name] = data.reshape(t["shape"])
    return out


class Normalize(nn.Module):
    """predcode's normalize op: (x - mean[c]) / std[c] over dim 1 (a single pair: every value); constants, not in the state_dict."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2) if self.mean.numel() > 1 else (1,) * x.dim()
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)


def build(spec):
    blocks = spec["blocks"] if isinstance(spec, dict) else spec
    seq = []
    for block in blocks:
        ops = []
        for op in block:
            kind = op["op"]
            if kind == "linear":
                ops.append(nn.Linear(op["in"], op["out"], bias=op.get("bias", True)))
            elif kind == "conv2d":
                ops.append(nn.Conv2d(op["in"], op["out"], tuple(op["kernel"]), stride=tuple(op.get("stride", [1, 1])),
                                     padding=tuple(op.get("padding", [0, 0])), bias=op.get("bias", True)))
            elif kind in ("maxpool2d", "avgpool2d"):
                cls = nn.MaxPool2d if kind == "maxpool2d" else nn.AvgPool2d
                ops.append(cls(tuple(op["kernel"]), stride=tuple(op.get("stride", op["kernel"]))))
            elif kind == "flatten":
                ops.append(nn.Flatten())
            elif kind == "leaky_relu":
                ops.append(nn.LeakyReLU(op.get("slope", 0.01)))
            elif kind == "normalize":
                ops.append(Normalize(op["mean"], op["std"]))
            elif kind in ("gelu", "gelu_tanh"):
                ops.append(nn.GELU(approximate="tanh" if kind == "gelu_tanh" else "none"))
            else:
                ops.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]())
        seq.append(nn.Sequential(*ops))
    return nn.Sequential(*seq)


def idx(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def main():
    run = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    model = build(json.load(open(os.path.join(run, "model.json"))))
    model.load_state_dict(load_safetensors(os.path.join(run, "model.safetensors")), strict=True)
    model.eval()
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
