#!/usr/bin/env python3
"""Dev-only end-to-end check of python/predcode_torch.py on Fashion-MNIST's test set.

For a few PyTorch models, built as Torch2PC builds them (every layer kind predcode takes, a block that is one
bare layer, layers without bias, strides, padding, a normalize op):
  1. export() writes a predcode model folder; `predcode eval` of it must give PyTorch's loss and accuracy;
  2. `predcode train --model DIR/model.json --init DIR/model.safetensors` trains it a few steps, and load()
     of the run, and load_into() the original model object, must give `predcode eval`'s loss and accuracy in PyTorch;
CIFAR-10's Python version converted by cifar10_binary must evaluate in predcode as the pickles do in PyTorch;
and layers predcode does not have, and a run of another architecture, must be refused by name. Usage (Debian's python3-torch, the
dataset-fashion-mnist package): /usr/bin/python3 bench/peer/check_export.py [--steps 20] [--predcode ./predcode]
"""
import argparse, json, os, pickle, subprocess, sys, tempfile
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from check_checkpoint import idx  # noqa: E402
from predcode_torch import Normalize, cifar10_binary, export, load, load_into  # noqa: E402
from torch_step import example_cnn  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def models():
    torch.manual_seed(0)
    yield "torch2pc-example-cnn", example_cnn()
    yield "mlp-every-activation", nn.Sequential(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Tanh()),
        nn.Sequential(nn.Linear(64, 48), nn.LeakyReLU(0.2)),
        nn.Sequential(nn.Linear(48, 32, bias=False), nn.GELU(approximate="tanh")),
        nn.Sequential(nn.Linear(32, 24), nn.GELU()),
        nn.Sequential(nn.Linear(24, 16), nn.Sigmoid()),
        nn.Linear(16, 10))  # a block that is one bare layer
    yield "cnn-strides-padding-pools", nn.Sequential(
        nn.Sequential(Normalize([0.286], [0.353]), nn.Conv2d(1, 6, 5, stride=2, padding=2, bias=False), nn.ReLU(), nn.AvgPool2d(2)),
        nn.Sequential(nn.Conv2d(6, 8, (3, 2), padding=(1, 0)), nn.LeakyReLU(), nn.MaxPool2d(2, stride=1), nn.Flatten()),
        nn.Sequential(nn.Linear(8 * 6 * 5, 10)))


def torch_score(model, x, y):
    with torch.no_grad():
        logits = model(x)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def predcode_score(predcode, folder):
    out = subprocess.check_output([predcode, "eval", "--checkpoint", folder, "--data", "fashion-mnist:" + DATA, "--json"])
    r = json.loads(out)
    return r["loss"], r["accuracy"]


def agree(what, theirs, ours):
    ok = abs(theirs[0] - ours[0]) <= 2e-5 * max(1, abs(theirs[0])) and abs(theirs[1] - ours[1]) <= 2e-4
    print(f"  {what}: PyTorch loss {theirs[0]:.6f} accuracy {theirs[1]:.4f}; predcode loss {ours[0]:.6f} accuracy {ours[1]:.4f}"
          f"  {'ok' if ok else 'MISMATCH'}")
    return ok


def cifar_python_version_converts(predcode):
    """CIFAR-10's Python version (as torchvision downloads it; random pixels and labels here) converted by
    cifar10_binary: predcode eval on the converted files must give what PyTorch computes on the pickles."""
    g = torch.Generator().manual_seed(1)
    root = tempfile.mkdtemp()
    py = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(py)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = torch.randint(0, 256, (40, 3072), dtype=torch.uint8, generator=g).numpy()
        labels = torch.randint(0, 10, (40,), generator=g).tolist()
        batches[name] = (data, labels)
        with open(os.path.join(py, name), "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    out = os.path.join(root, "bin")
    cifar10_binary(root, out)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2)), nn.Sequential(nn.Flatten(), nn.Linear(4 * 15 * 15, 10))).eval()
    folder = os.path.join(root, "model")
    export(model, (3, 32, 32), folder)
    data, labels = batches["test_batch"]
    x = torch.from_numpy(data).float().div(255).reshape(-1, 3, 32, 32)  # what torchvision's ToTensor gives
    r = json.loads(subprocess.check_output([predcode, "eval", "--checkpoint", folder, "--data", "cifar10:" + out, "--json"]))
    return agree("CIFAR-10's Python version, converted", torch_score(model, x, torch.tensor(labels)), (r["loss"], r["accuracy"]))


def refused(model, expect):
    try:
        export(model, (1, 28, 28), tempfile.mkdtemp())
    except ValueError as e:
        ok = expect in str(e)
        print(f"  refused: {e}  {'ok' if ok else 'MISMATCH'}")
        return ok
    print(f"  {model} was not refused  MISMATCH")
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--predcode", default="./predcode")
    a = ap.parse_args()
    x = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    y = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).long()
    ok = True
    for name, model in models():
        print(name)
        model.eval()
        folder = os.path.join(tempfile.mkdtemp(), name)
        export(model, (1, 28, 28), folder)
        ok &= agree("exported, untrained", torch_score(model, x, y), predcode_score(a.predcode, folder))
        run = os.path.join(tempfile.mkdtemp(), "run")
        subprocess.run([a.predcode, "train", "--quiet", "--model", os.path.join(folder, "model.json"), "--init", os.path.join(folder, "model.safetensors"),
                        "--data", "fashion-mnist:" + DATA, "--epochs", "1", "--max-steps", str(a.steps), "--algorithm", "strict",
                        "--validation", "0", "--out", run], check=True, stdout=subprocess.DEVNULL)
        trained = predcode_score(a.predcode, run)
        ok &= agree(f"trained {a.steps} steps by predcode, loaded", torch_score(load(run), x, y), trained)
        ok &= agree(f"trained {a.steps} steps by predcode, loaded into the original", torch_score(load_into(model, run), x, y), trained)
    print("cifar10_binary")
    ok &= cifar_python_version_converts(a.predcode)
    print("refusals")
    ok &= refused(nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))), "BatchNorm2d is not a layer predcode has")
    ok &= refused(nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3, groups=1, dilation=2))), "dilation")
    ok &= refused(nn.Sequential(nn.Sequential(nn.Sequential(nn.Flatten()))), "one level deep")
    try:
        load_into(example_cnn(), run)  # the last run is the CNN with strides and pools
        print("  a run of another architecture was loaded  MISMATCH")
        ok = False
    except ValueError as e:
        print(f"  refused: {e}  {'ok' if 'block 0 is' in str(e) else 'MISMATCH'}")
        ok &= "block 0 is" in str(e)
    print("predcode_torch: export and load agree with predcode" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
