#!/usr/bin/env python3
"""Times the same training steps as `predcode bench` in PyTorch, on the same machine, for side-by-side ratios.

- backprop: plain PyTorch (forward, loss.backward(), Adam step).
- strict / fixedpred: the relaxation written as Torch2PC writes it (per-block forward,
  torch.autograd.functional.vjp per block, n sweeps), then SetPCGrads-style parameter updates and Adam.
- pc: standard PC as PCX runs it (beliefs from the feedforward pass, the output clamped to the target,
  n steps of SGD with momentum on each sample's energy by autograd, then the weights' gradient of the
  energy at the relaxed beliefs), for PCX's MLP (bench/models/pcx-mlp-gelu.json) with --loss mse.
- ipc: incremental PC as PCX runs it: the same relaxation, and at each of its n steps the weights' gradient
  of the same energy and an optimizer step (one autograd pass a step for both).

Never a build or test dependency: Debian's python3-torch, installed by bench/peer/run.sh. --device cuda runs it on
a GPU (bench/gpu/peer.sh on a lent machine's PyTorch), each step timed between two synchronizes.
Prints one JSON record per configuration (median_ms_per_step), like `predcode bench --json`.
"""
import argparse, json, os, statistics, sys, time


def _threads_option():
    """--threads as given, read before torch loads: Debian's torch calls OpenBLAS, whose own thread
    count torch.set_num_threads does not change (one "thread" ran its GEMMs on every core)."""
    for i, v in enumerate(sys.argv):
        if v == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if v.startswith("--threads="):
            return v.split("=", 1)[1]
    return None


if _threads_option() not in (None, "0"):
    os.environ["OPENBLAS_NUM_THREADS"] = _threads_option()
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


def pcx_mlp_gelu():
    """bench/models/pcx-mlp-gelu.json: PCX's Fashion-MNIST MLP, GELU's tanh approximation as jax.nn.gelu."""
    act = lambda: nn.GELU(approximate="tanh")
    return nn.Sequential(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 128), act()),
        nn.Sequential(nn.Linear(128, 128), act()),
        nn.Sequential(nn.Linear(128, 128), act()),
        nn.Sequential(nn.Linear(128, 10)))


MODELS = {"example-cnn": example_cnn, "mlp": mlp, "bench/models/pcx-mlp-gelu.json": pcx_mlp_gelu}


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


def hidden_beliefs(model, x):
    """The hidden beliefs at the feedforward pass, each a leaf that takes gradients."""
    with torch.no_grad():
        h = [x]
        for f in model[:-1]:
            h.append(f(h[-1]))
    return [t.clone().requires_grad_(True) for t in h[1:]]


def pc_step(model, loss_fn, x, y, eta, n, momentum):
    """PCX's PC on squared error with y one-hot. Layer 1's prediction (from the fixed input) is formed once."""
    L = len(model)
    hs = hidden_beliefs(model, x)
    first = hs[0].detach().clone()
    vel = [None] * len(hs)

    def energy(prediction1):  # summed over the batch: its gradient is each sample's own
        e = 0.5 * ((hs[0] - prediction1) ** 2).sum()
        for l in range(1, L - 1):
            e = e + 0.5 * ((hs[l] - model[l](hs[l - 1])) ** 2).sum()
        return e + 0.5 * ((y - model[L - 1](hs[L - 2])) ** 2).sum()

    for s in range(n):
        gs = torch.autograd.grad(energy(first), hs)
        with torch.no_grad():
            for i, g in enumerate(gs):
                vel[i] = g if s == 0 else momentum * vel[i] + g
                hs[i] -= eta * vel[i]
    for t in hs:
        t.requires_grad_(False)
    e = energy(model[0](x)) / x.shape[0]  # the weights' gradient: the batch mean
    e.backward()
    return e


def ipc_step(model, x, y, eta, n, momentum, opt):
    """iPC as PCX runs it, PC's energy and relaxation with an optimizer step on the weights at every inference step."""
    L = len(model)
    hs = hidden_beliefs(model, x)
    params = list(model.parameters())
    vel = [None] * len(hs)
    for s in range(n):
        e = 0.5 * ((hs[0] - model[0](x)) ** 2).sum()  # layer 1's prediction moves with its weights
        for l in range(1, L - 1):
            e = e + 0.5 * ((hs[l] - model[l](hs[l - 1])) ** 2).sum()
        e = e + 0.5 * ((y - model[L - 1](hs[L - 2])) ** 2).sum()
        gs = torch.autograd.grad(e, hs + params)
        with torch.no_grad():
            for p, g in zip(params, gs[len(hs):]):
                p.grad = g / x.shape[0]  # the weights' gradient: the batch mean
            opt.step()
            for i, g in enumerate(gs[:len(hs)]):
                vel[i] = g if s == 0 else momentum * vel[i] + g
                hs[i] -= eta * vel[i]
    return e


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
    ap.add_argument("--loss", default="cross-entropy", choices=["cross-entropy", "mse"])
    ap.add_argument("--momentum", type=float, default=0.0, help="pc's and ipc's belief momentum")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)
    # A GPU runs asynchronously: a step's time is from a synchronize to the one after it.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    steps = {"strict": strict_step, "fixedpred": fixedpred_step, "backprop": backprop_step,
             "pc": lambda m, lf, x, y, eta, n: pc_step(m, lf, x, y, eta, n, a.momentum)}
    for name in a.model.split(","):
        for alg in a.algorithm.split(","):
            model = MODELS[name]().to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            x = torch.rand(a.batch_size, 1, 28, 28, device=dev)
            y = torch.randint(0, 10, (a.batch_size,), device=dev)
            if a.loss == "mse":  # one-hot targets, as predcode's mse takes them
                y = nn.functional.one_hot(y, 10).float()
            loss_fn = nn.CrossEntropyLoss() if a.loss == "cross-entropy" else nn.MSELoss()
            times = []
            for i in range(a.warmup + a.steps):
                sync()
                t0 = time.perf_counter()
                if alg == "ipc":  # its optimizer steps are inside the relaxation
                    ipc_step(model, x, y, a.eta, a.n, a.momentum, opt)
                else:
                    opt.zero_grad()
                    steps[alg](model, loss_fn, x, y, a.eta, a.n)
                    opt.step()
                sync()
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
            blas = torch.cuda.get_device_name(dev) if dev.type == "cuda" else os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
            rec = {"backend": "pytorch", "device": a.device, "torch": torch.__version__, "blas": blas, "threads": torch.get_num_threads(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "all cores"), "model": name,
                   "batch_size": a.batch_size, "algorithm": alg, "eta": a.eta, "n": a.n if alg != "backprop" else 1,
                   "median_ms_per_step": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    sys.exit(main())
