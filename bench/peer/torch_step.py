#!/usr/bin/env python3
"""Times the same training steps as `predcode bench` in PyTorch, on the same machine, for side-by-side ratios.

- backprop: plain PyTorch (forward, loss.backward(), Adam step).
- strict / fixedpred: the relaxation written as Torch2PC writes it (per-block forward,
  torch.autograd.functional.vjp per block, n sweeps), then SetPCGrads-style parameter updates and Adam.

Never a build or test dependency: Debian's python3-torch, installed by bench/peer/run.sh.
Prints one JSON record per configuration (median_ms_per_step), like `predcode bench --json`.
"""
import argparse, json, os, statistics, sys, time
import torch
import torch.nn as nn


def example_cnn():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 10, 3), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(10, 5, 3), nn.ReLU(), nn.Flatten()),
        nn.Sequential(nn.Linear(605, 50), nn.ReLU()),
        nn.Sequential(nn.Linear(50, 30), nn.ReLU()),
        nn.Sequential(nn.Linear(30, 10)))


def mlp():
    return nn.Sequential(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU()),
        nn.Sequential(nn.Linear(512, 256), nn.ReLU()),
        nn.Sequential(nn.Linear(256, 10)))


def fwd(model, x):
    vhat = [x]
    for f in model:
        vhat.append(f(vhat[-1]))
    return vhat


def strict_step(model, loss_fn, x, y, eta, n):
    vhat = fwd(model, x)
    loss = loss_fn(vhat[-1], y)
    L = len(model)
    v = [t.detach().clone() for t in vhat]
    eps = [None] * (L + 1)
    for _ in range(n):
        vt = model[L - 1](v[L - 1])
        eps[L] = torch.autograd.grad(loss_fn(vt, y), vt)[0]
        for l in reversed(range(1, L)):
            with torch.no_grad():
                eps[l] = model[l - 1](v[l - 1]) - v[l]
            _, g = torch.autograd.functional.vjp(model[l], v[l], eps[l + 1])
            v[l] = v[l] + eta * (eps[l] - g)
    for l in range(L):
        out = model[l](v[l])
        ps = list(model[l].parameters())
        if ps:
            gs = torch.autograd.grad(out, ps, grad_outputs=eps[l + 1])
            for p, g in zip(ps, gs):
                p.grad = g
    return loss


def fixedpred_step(model, loss_fn, x, y, eta, n):
    vhat = fwd(model, x)
    loss = loss_fn(vhat[-1], y)
    L = len(model)
    dldy = torch.autograd.grad(loss, vhat[-1], retain_graph=True)[0]
    v = [t.detach().clone() for t in vhat]
    eps = [None] * (L + 1)
    eps[L] = dldy
    for _ in range(n):
        for l in reversed(range(L)):
            eps[l] = vhat[l].detach() - v[l]
            _, g = torch.autograd.functional.vjp(model[l], vhat[l].detach(), eps[l + 1])
            v[l] = v[l] + eta * (eps[l] - g)
    for l in range(L):
        ps = list(model[l].parameters())
        if ps:
            gs = torch.autograd.grad(vhat[l + 1], ps, grad_outputs=eps[l + 1], retain_graph=True)
            for p, g in zip(ps, gs):
                p.grad = g
    return loss


def backprop_step(model, loss_fn, x, y, eta, n):
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="example-cnn,mlp")
    ap.add_argument("--algorithm", default="strict,fixedpred,backprop")
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eta", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    steps = {"strict": strict_step, "fixedpred": fixedpred_step, "backprop": backprop_step}
    for name in a.model.split(","):
        for alg in a.algorithm.split(","):
            model = {"example-cnn": example_cnn, "mlp": mlp}[name]()
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            x = torch.rand(a.batch_size, 1, 28, 28)
            y = torch.randint(0, 10, (a.batch_size,))
            loss_fn = nn.CrossEntropyLoss()
            times = []
            for i in range(a.warmup + a.steps):
                t0 = time.perf_counter()
                opt.zero_grad()
                steps[alg](model, loss_fn, x, y, a.eta, a.n)
                opt.step()
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
            rec = {"backend": "pytorch", "torch": torch.__version__, "blas": os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu"), "threads": torch.get_num_threads(), "model": name,
                   "batch_size": a.batch_size, "algorithm": alg, "eta": a.eta, "n": a.n if alg != "backprop" else 1,
                   "median_ms_per_step": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    sys.exit(main())
