#!/usr/bin/env python3
"""Draws random small models and writes, for each, what Torch2PC's PCInfer computes on it.

The output is the golden-case format (modules/predcode-core/src/test/resources/golden/README.md), so
the golden test runs each file as it runs the twelve given cases. Torch2PC itself is not
part of predcode: point --torch2pc at a checkout of github.com/RobertRosenbaum/Torch2PC (the cases in
the repository were made from commit 00c6c50). Needs PyTorch (Debian's python3-torch 1.13 is enough).

    python3 bench/golden/generate.py --torch2pc ~/Torch2PC --out /tmp/cases --count 40 --seed 1
    PREDCODE_GOLDEN_DIR=/tmp/cases ./mvnw -B verify -pl modules/predcode-core -am -Dtest=GoldenCaseTest -Dsurefire.failIfNoSpecifiedTests=false

The draw covers what the format allows and the given cases do not: leaky ReLU, average pooling,
overlapping and non-square pooling and kernels, stride and padding, convolutions without bias, blocks
without parameters (an activation or a pooling alone), blocks of two linear ops, an activation on the
output, a batch of one, n from 1 to more than the depth, eta up to 1, and training with SGD (with and
without momentum) and Adam. `--large` draws wider layers (to 70), more channels (to 24), images to 28x28, kernels to
5x5 and batches of 1, 7, 16 and 33, which take the backends' blocked and split paths.

A drawn case that no float32 computation can be held to (its relaxation ran off, or it is chaotic) is skipped with
the reason; `--keep-ill-conditioned` writes it anyway.
"""
import argparse
import contextlib
import io
import json
import os
import random
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from predcode_torch import build  # noqa: E402  (a model spec as the torch.nn.Sequential it is)

torch.set_default_dtype(torch.float64)

ACTIVATIONS = ["relu", "tanh", "sigmoid", "leaky_relu"]
ALGORITHMS = {"strict": "Strict", "fixedpred": "FixedPred", "exact": "Exact"}
# What a draw ranges over. Small by default: fast, and every path of the format. --large: wider layers, more channels,
# larger images and kernels, batches off the vector width, which take the backends' blocked and split paths.
SMALL = dict(hidden=9, out=5, second=8, mlp_in=10, image=(6, 10), in_channels=2, channels=4, kernel=3, padding=1,
             conv_blocks=2, batches=[1, 2, 3, 4, 5])
LARGE = dict(hidden=70, out=12, second=40, mlp_in=100, image=(10, 28), in_channels=3, channels=24, kernel=5, padding=2,
             conv_blocks=3, batches=[1, 7, 16, 33])
SIZE = SMALL


def tensor_json(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def activation(rng):
    name = rng.choice(ACTIVATIONS)
    return {"op": name, "slope": rng.choice([0.01, 0.1, 0.2])} if name == "leaky_relu" else {"op": name}


def draw_mlp(rng, width_in):
    depth = rng.randint(1, 4)
    blocks, width = [], width_in
    first = [{"op": "flatten"}] if rng.random() < 0.2 else []
    for b in range(depth):
        out = rng.randint(1, SIZE["hidden"]) if b < depth - 1 else rng.randint(2, SIZE["out"])
        block = first + [{"op": "linear", "in": width, "out": out, "bias": rng.random() < 0.85}]
        first = []
        last = b == depth - 1
        if not last or rng.random() < 0.2:
            block.append(activation(rng))
        if not last and rng.random() < 0.15:  # two linear ops in one block
            out2 = rng.randint(1, SIZE["second"])
            block += [{"op": "linear", "in": out, "out": out2, "bias": True}, activation(rng)]
            out = out2
        blocks.append(block)
        width = out
        if not last and rng.random() < 0.1:  # a block without parameters
            blocks.append([activation(rng)])
    return blocks, width


def batch(rng, shape, size, loss, classes, out_shape):
    x = torch.randn(size, *shape)
    if loss == "cross_entropy":
        y = torch.tensor([rng.randrange(classes) for _ in range(size)])
    else:
        y = torch.randn(size, *out_shape)
    return x, y


def grads(model):
    return {k: tensor_json(p.grad) for k, p in model.named_parameters() if p.grad is not None}


def case(rng, seed, index, pc, fixed):
    cnn = rng.random() < 0.35
    if cnn:
        channels, h, w = rng.randint(1, SIZE["in_channels"]), rng.randint(*SIZE["image"]), rng.randint(*SIZE["image"])
        in_shape = [channels, h, w]
        spec = draw_conv(rng, in_shape)
    else:
        in_shape = [rng.randint(1, SIZE["mlp_in"])]
        spec, _ = draw_mlp(rng, in_shape[0])
    model = build(spec)
    with torch.no_grad():
        for p in model.parameters():  # PyTorch's init, widened so that activations are not all near 0
            p.mul_(rng.choice([1.0, 1.5, 2.0]))
    loss = rng.choice(["mse", "cross_entropy"])
    size = rng.choice(SIZE["batches"])
    out_shape = list(model(torch.zeros(1, *in_shape)).shape[1:])
    if loss == "cross_entropy" and (len(out_shape) != 1 or out_shape[0] < 2):
        loss = "mse"
    algorithm = rng.choice(list(ALGORITHMS))
    depth = len(spec)
    eta = rng.choice([0.05, 0.1, 0.2, 0.5, 1.0])
    n = rng.choice([1, 2, 3, depth, depth + 1, 7, 20])
    if algorithm == "fixedpred" and rng.random() < 0.2:
        eta, n = 1.0, depth  # the exactness theorem's setting
    algorithm = fixed.algorithm or algorithm
    eta = fixed.eta if fixed.eta is not None else eta
    n = fixed.n if fixed.n is not None else n
    loss_fn = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    classes = out_shape[0]
    x, y = batch(rng, in_shape, size, loss, classes, out_shape)
    params = {k: tensor_json(p) for k, p in model.state_dict().items()}

    model.zero_grad()
    vhat, loss_value, dldy, v, eps = pc.PCInfer(model, loss_fn, x, y, ALGORITHMS[algorithm], eta, n)
    expected = {
        "loss": float(loss_value), "dLdy": tensor_json(dldy),
        "vhat": [tensor_json(t) for t in vhat],
        "v": [None if t is None else tensor_json(t) for t in v],
        "epsilon": [None if t is None else tensor_json(t) for t in eps],
        "grads": grads(model),
    }
    model.zero_grad()
    loss_fn(model(x), y).backward()
    expected["bp_grads"] = grads(model)

    name = f"s{seed}_{index:03d}_{'cnn' if cnn else 'mlp'}_{loss}_{algorithm}"
    out = {"name": name, "source": "Torch2PC TorchSeq2PC.PCInfer, PyTorch " + torch.__version__ + " CPU, float64, "
           "drawn by bench/golden/generate.py", "model": spec, "loss": loss, "algorithm": algorithm,
           "eta": eta, "n": n, "params": params, "x": tensor_json(x), "y": tensor_json(y), "expected": expected}
    if rng.random() < 0.3:
        out["train"] = train(rng, model, loss_fn, algorithm, eta, n, in_shape, loss, classes, out_shape, pc)
        out["name"] = name = "train_" + name
    return name, out


def train(rng, model, loss_fn, algorithm, eta, n, in_shape, loss, classes, out_shape, pc):
    kind = rng.choice(["sgd", "adam"])
    lr = rng.choice([0.01, 0.05, 0.1]) if kind == "sgd" else rng.choice([0.001, 0.01])
    spec = {"optimizer": kind, "lr": lr}
    if kind == "sgd":
        spec["momentum"] = rng.choice([0.0, 0.9])
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=spec.get("momentum", 0.0))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches, losses = [], []
    for _ in range(rng.randint(2, 4)):
        x, y = batch(rng, in_shape, rng.choice([1, 3, 4]), loss, classes, out_shape)
        opt.zero_grad()
        _, loss_value, _, _, _ = pc.PCInfer(model, loss_fn, x, y, ALGORITHMS[algorithm], eta, n)
        opt.step()
        batches.append({"x": tensor_json(x), "y": tensor_json(y)})
        losses.append(float(loss_value))
    spec.update(batches=batches, losses=losses,
                params_after={k: tensor_json(p) for k, p in model.state_dict().items()})
    return spec


def replay(case, pc, jitter=0.0, generator=None):
    """What the case's expected tensors are, recomputed from its parameters and batches, each multiplied by
    (1 + jitter * N(0, 1)) where jitter is given: every v, epsilon and gradient, and the parameters after training."""
    def tensor(j, wobble=False):
        t = torch.tensor(j["data"]).reshape(j["shape"])
        return t * (1 + jitter * torch.randn(t.shape, generator=generator)) if wobble and jitter else t

    def xy(b):
        y = tensor(b["y"])
        return tensor(b["x"], True), y.long() if case["loss"] == "cross_entropy" else y

    model = build(case["model"])

    def start():
        with torch.no_grad():
            for k, p in model.state_dict().items():
                p.copy_(tensor(case["params"][k], True))

    loss_fn = nn.MSELoss() if case["loss"] == "mse" else nn.CrossEntropyLoss()
    algorithm, eta, n = ALGORITHMS[case["algorithm"]], case["eta"], case["n"]
    start()
    x, y = xy(case)
    with contextlib.redirect_stdout(io.StringIO()):
        _, _, _, v, eps = pc.PCInfer(model, loss_fn, x, y, algorithm, eta, n)
    out = {f"v[{i}]": t.detach().clone() for i, t in enumerate(v) if t is not None}
    out.update({f"epsilon[{i}]": t.detach().clone() for i, t in enumerate(eps) if t is not None})
    out.update({"grad " + k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    if "train" in case:
        spec = case["train"]
        start()
        opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec.get("momentum", 0.0)) if spec["optimizer"] == "sgd" \
            else torch.optim.Adam(model.parameters(), lr=spec["lr"])
        for b in spec["batches"]:
            opt.zero_grad()
            x, y = xy(b)
            with contextlib.redirect_stdout(io.StringIO()):
                pc.PCInfer(model, loss_fn, x, y, algorithm, eta, n)
            opt.step()
        out.update({"params_after " + k: p.detach().clone() for k, p in model.state_dict().items()})
    return out


def ill_conditioned(case, pc):
    """Why no float32 computation can be held to the case at 1e-4, or None. Two ways: its relaxation ran off (a belief
    grew past 1e3 times the largest feedforward activation, where float32 saturates an activation that float64 does
    not, or overflows), or it is chaotic: its parameters and inputs moved by a relative 1e-7, about float32's rounding,
    move an expected tensor by more than 1e-4 (three tries). Torch2PC's own float32 misses such cases by far more."""
    e = case["expected"]
    scale = max(1.0, max(abs(x) for t in e["vhat"] for x in t["data"]))
    grown = max(abs(x) for t in e["v"] if t is not None for x in t["data"])
    if grown > 1e3 * scale:
        return f"its relaxation ran off (a belief reached {grown:.3g}; the feedforward pass's largest value is {scale:.3g})"
    drawing = torch.get_rng_state()  # building a model draws an init: leave the cases after this one as they were
    try:
        base, g = replay(case, pc), torch.Generator().manual_seed(0)
        for _ in range(3):
            moved = replay(case, pc, 1e-7, g)
            for k, ref in base.items():
                norm = ref.norm().item()
                change = (moved[k] - ref).norm().item() / (norm if norm > 0 else 1.0)
                if change > 1e-4:
                    return f"it is chaotic: a relative 1e-7 change of its parameters and inputs moves {k} by {change:.3g}"
        return None
    finally:
        torch.set_rng_state(drawing)


def draw_conv(rng, in_shape):
    c, h, w = in_shape
    blocks = []
    for _ in range(rng.randint(1, SIZE["conv_blocks"])):
        kh, kw = rng.randint(1, SIZE["kernel"]), rng.randint(1, SIZE["kernel"])
        sh, sw = rng.randint(1, 2), rng.randint(1, 2)
        ph, pw = rng.randint(0, min(SIZE["padding"], kh - 1)), rng.randint(0, min(SIZE["padding"], kw - 1))
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh < 2 or ow < 2:
            break
        out = rng.randint(1, SIZE["channels"])
        block = [{"op": "conv2d", "in": c, "out": out, "kernel": [kh, kw], "stride": [sh, sw],
                  "padding": [ph, pw], "bias": rng.random() < 0.8}, activation(rng)]
        h, w, c = oh, ow, out
        if rng.random() < 0.7:
            pk = [rng.randint(1, min(3, h)), rng.randint(1, min(3, w))]
            ps = [rng.randint(1, pk[0]), rng.randint(1, pk[1])]
            block.append({"op": rng.choice(["maxpool2d", "avgpool2d"]), "kernel": pk, "stride": ps})
            h, w = (h - pk[0]) // ps[0] + 1, (w - pk[1]) // ps[1] + 1
        blocks.append(block)
    if blocks and rng.random() < 0.25:  # pooling as a block of its own
        pk = [min(2, h), min(2, w)]
        blocks.append([{"op": "avgpool2d", "kernel": pk, "stride": pk}])
        h, w = h // pk[0], w // pk[1]
    mlp, _ = draw_mlp(rng, c * h * w)
    mlp[0] = [{"op": "flatten"}] + [op for op in mlp[0] if op["op"] != "flatten"]
    return blocks + mlp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torch2pc", required=True, help="folder holding Torch2PC's TorchSeq2PC.py")
    ap.add_argument("--out", required=True, help="folder to write the cases into")
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--algorithm", choices=list(ALGORITHMS), help="only this algorithm (default: each case draws one)")
    ap.add_argument("--eta", type=float, help="this step size in every case (default: drawn)")
    ap.add_argument("--n", type=int, help="this many inference iterations in every case (default: drawn)")
    ap.add_argument("--large", action="store_true", help="larger models and batches (see LARGE)")
    ap.add_argument("--keep-ill-conditioned", action="store_true",
                    help="write cases that no float32 computation can match too (default: skipped, with the reason)")
    args = ap.parse_args()
    global SIZE
    SIZE = LARGE if args.large else SMALL
    if not os.path.isfile(os.path.join(args.torch2pc, "TorchSeq2PC.py")):
        sys.exit(f"{args.torch2pc}: no TorchSeq2PC.py there (clone github.com/RobertRosenbaum/Torch2PC)")
    sys.path.insert(0, args.torch2pc)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line when imported
        import TorchSeq2PC as pc
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    for i in range(args.count):
        name, out = case(rng, args.seed, i, pc, args)
        why = None if args.keep_ill_conditioned else ill_conditioned(out, pc)
        if why:
            print(f"skipped {name}: {why}", file=sys.stderr)
            continue
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))
        print(name, file=sys.stderr)


if __name__ == "__main__":
    main()
