#!/usr/bin/env python3
"""The same training run in PyTorch (the relaxations written as Torch2PC writes them, torch_step.py)
and in predcode, step by step: same initial parameters, same batches in the same order.

For each algorithm and loss: writes the PyTorch model's initial state_dict as safetensors, runs
`predcode train --init FILE --shuffle off --validation 0` on Fashion-MNIST for the first STEPS
batches, runs PyTorch on the same batches, then compares the loss at every step and the parameters at
the end (relative error ||a - b|| / ||b||). PyTorch also runs the same steps in float64: predcode's
distance from that reference, next to PyTorch float32's, says whether a difference is float32
rounding (amplified by training: Adam's first steps are nearly sign(g)) or something else. Prints one
JSON record per run.

Never a build or test dependency: Debian's python3-torch (bench/peer/run-trajectory.sh installs it and runs this).
"""
import argparse, json, os, subprocess, sys, tempfile
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from torch_step import example_cnn, strict_step, fixedpred_step, backprop_step  # noqa: E402
from check_checkpoint import idx  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from predcode_torch import read_safetensors, write_safetensors  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


def rel(a, b):
    return float(torch.linalg.vector_norm(a - b) / max(float(torch.linalg.vector_norm(b)), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", default="backprop,exact,fixedpred,strict")
    ap.add_argument("--loss", default="cross-entropy,mse")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--predcode", default="./predcode")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x_all = (idx(f"{FASHION}/train-images-idx3-ubyte.gz").to(torch.float32) / 255).reshape(-1, 1, 28, 28)
    y_all = idx(f"{FASHION}/train-labels-idx1-ubyte.gz").to(torch.int64)
    samples = a.steps * a.batch_size
    if samples > len(y_all):
        sys.exit(f"--steps {a.steps} at batch {a.batch_size} needs {samples} samples; Fashion-MNIST has {len(y_all)}")
    steps_fn = {"backprop": backprop_step, "exact": backprop_step, "fixedpred": fixedpred_step, "strict": strict_step}
    for loss_name in a.loss.split(","):
        for alg in a.algorithm.split(","):
            torch.manual_seed(0)
            model = example_cnn()
            tmp = tempfile.mkdtemp()
            init = os.path.join(tmp, "init.safetensors")
            write_safetensors(init, model.state_dict())
            out = os.path.join(tmp, "run")
            # One epoch over the first `samples` images: predcode takes the same batches in order (--shuffle off).
            cmd = [a.predcode, "train", "--quiet", "--model", "example-cnn", "--data", "fashion-mnist", "--batch-size", str(a.batch_size),
                   "--epochs", "1", "--max-steps", str(a.steps), "--algorithm", alg, "--loss", loss_name, "--optimizer", "adam", "--lr", str(a.lr),
                   "--eta", str(a.eta), "--n", str(a.n), "--init", init, "--shuffle", "off", "--validation", "0",
                   "--stable-relaxation", "off", "--out", out]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ours = [float(line.split(",")[2]) for line in open(os.path.join(out, "metrics.csv")).read().splitlines()[1:]]
            if loss_name == "mse":
                mse = nn.MSELoss()
                loss_fn = lambda out_, y: mse(out_, nn.functional.one_hot(y, 10).to(out_.dtype))
            else:
                loss_fn = nn.CrossEntropyLoss()
            init_state = {k: v.clone() for k, v in model.state_dict().items()}
            runs = {}
            for dtype in (torch.float32, torch.float64):
                m = example_cnn().to(dtype)
                m.load_state_dict({k: v.to(dtype) for k, v in init_state.items()})
                opt = torch.optim.Adam(m.parameters(), lr=a.lr)
                losses = []
                for s in range(a.steps):
                    x = x_all[s * a.batch_size:(s + 1) * a.batch_size].to(dtype)
                    y = y_all[s * a.batch_size:(s + 1) * a.batch_size]
                    opt.zero_grad()
                    loss = steps_fn[alg](m, loss_fn, x, y, a.eta, a.n)
                    opt.step()
                    losses.append(float(loss))
                runs[dtype] = (m, losses)
            model, theirs = runs[torch.float32]
            model64, ref = runs[torch.float64]
            final_ours = read_safetensors(os.path.join(out, "model.safetensors"))
            params = {k: rel(final_ours[k], v) for k, v in model.state_dict().items()}
            state64 = model64.state_dict()
            ours_vs64 = max(rel(final_ours[k].double(), state64[k]) for k in state64)
            torch32_vs64 = max(rel(v.double(), state64[k]) for k, v in model.state_dict().items())
            drift = [abs(o - t) / max(abs(t), 1e-30) for o, t in zip(ours, theirs)]
            drift64 = [abs(o - r) / max(abs(r), 1e-30) for o, r in zip(ours, ref)]
            drift32_64 = [abs(t - r) / max(abs(r), 1e-30) for t, r in zip(theirs, ref)]
            print(json.dumps({"algorithm": alg, "loss": loss_name, "steps": len(theirs), "predcode_steps": len(ours),
                              "loss_first": [ours[0], theirs[0]], "loss_last": [ours[-1], theirs[-1]],
                              "loss_relative_drift_max": max(drift), "loss_relative_drift_at": {str(k): drift[k - 1] for k in (1, 10, 50, 100, 200) if k <= len(drift)},
                              "param_relative_error_max": max(params.values()), "param_relative_error": params,
                              "float64_reference": {"predcode_loss_drift_max": max(drift64), "pytorch32_loss_drift_max": max(drift32_64),
                                                    "predcode_param_error_max": ours_vs64, "pytorch32_param_error_max": torch32_vs64},
                              "predcode_losses": ours, "pytorch_losses": theirs}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
