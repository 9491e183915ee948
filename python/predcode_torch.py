"""predcode and PyTorch, both ways: a Torch2PC model as a predcode model folder, and a predcode run as a torch model.

A Torch2PC model is an nn.Sequential of blocks, each block an nn.Sequential of layers (or one layer); a
block is one PC layer. predcode's model folder holds the same model as a spec (model.json) and its
parameters under the state_dict's names (model.safetensors):

    import predcode_torch
    predcode_torch.export(model, (1, 28, 28), "my-model")   # writes my-model/model.json and my-model/model.safetensors
    # ./predcode eval  --checkpoint my-model --data fashion-mnist          (the untrained model: the same loss as in torch)
    # ./predcode train --model my-model/model.json --init my-model/model.safetensors --data fashion-mnist ...
    trained = predcode_torch.load("runs/latest")            # the trained model as an nn.Sequential, parameters loaded
    predcode_torch.load_into(model, "runs/latest")          # or into your own model object, in place

torchvision downloads CIFAR-10's Python version (pickles); predcode reads the binary one:

    predcode_torch.cifar10_binary("data", "cifar10-bin")    # data/cifar-10-batches-py -> cifar10-bin/*.bin
    # or: python3 python/predcode_torch.py cifar10-binary data cifar10-bin
    # ./predcode train --data cifar10:cifar10-bin ...

Any other labelled data set, as the folder `--data npy:DIR` reads (four .npy files and classes.txt):

    predcode_torch.npy_folder(train_set, test_set, "my-data")  # torch Datasets of (input, label), or (x, y) pairs
    # ./predcode train --data npy:my-data ...

Layers predcode takes: Linear, Conv2d (groups 1, no dilation, zero padding), MaxPool2d and AvgPool2d
(no padding, floor mode), ReLU, LeakyReLU, Tanh, Sigmoid, GELU (exact or tanh), Flatten (from dim 1),
and this module's Normalize. Anything else is refused by name. Needs only torch (no safetensors
package): python3 -m pip install torch, or Debian's python3-torch. Never needed by predcode's build.
"""
import json
import os
import struct
import tempfile

import torch
import torch.nn as nn

__all__ = ["export", "load", "load_into", "spec_of", "build", "Normalize", "read_safetensors", "write_safetensors", "cifar10_binary", "npy_folder"]


class Normalize(nn.Module):
    """predcode's normalize op: (x - mean[c]) / std[c] per channel (dim 1), or one pair for every value; constants, not parameters."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2) if self.mean.numel() > 1 else (1,) * x.dim()
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)


def _pair(v, what, where):
    if isinstance(v, str):
        if v == "valid":
            return [0, 0]
        raise ValueError(f"{where}: {what}='{v}'; predcode takes explicit sizes")
    return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]


def _op(m, where):
    """One layer as predcode's op object, or ValueError naming the layer and what predcode would need. Types match
    exactly: a subclass may compute something else in its forward."""
    if type(m) is nn.Linear:
        return {"op": "linear", "in": m.in_features, "out": m.out_features, "bias": m.bias is not None}
    if type(m) is nn.Conv2d:
        if m.groups != 1 or _pair(m.dilation, "dilation", where) != [1, 1] or m.padding_mode != "zeros":
            raise ValueError(f"{where}: Conv2d with groups {m.groups}, dilation {m.dilation}, padding_mode '{m.padding_mode}'; "
                             "predcode's conv2d takes groups 1, dilation 1 and zero padding")
        return {"op": "conv2d", "in": m.in_channels, "out": m.out_channels, "kernel": _pair(m.kernel_size, "kernel_size", where),
                "stride": _pair(m.stride, "stride", where), "padding": _pair(m.padding, "padding", where), "bias": m.bias is not None}
    if type(m) in (nn.MaxPool2d, nn.AvgPool2d):
        kind = "maxpool2d" if type(m) is nn.MaxPool2d else "avgpool2d"
        extra = type(m) is nn.MaxPool2d and (_pair(m.dilation, "dilation", where) != [1, 1] or m.return_indices) \
            or type(m) is nn.AvgPool2d and m.divisor_override is not None
        if _pair(m.padding, "padding", where) != [0, 0] or m.ceil_mode or extra:
            raise ValueError(f"{where}: {type(m).__name__} with padding, ceil_mode, dilation, indices or a divisor; predcode's {kind} takes none")
        kernel = _pair(m.kernel_size, "kernel_size", where)
        return {"op": kind, "kernel": kernel, "stride": _pair(m.stride, "stride", where) if m.stride is not None else kernel}
    if type(m) is nn.Flatten:
        if m.start_dim != 1 or m.end_dim != -1:
            raise ValueError(f"{where}: Flatten({m.start_dim}, {m.end_dim}); predcode flattens each sample whole (start_dim 1, end_dim -1)")
        return {"op": "flatten"}
    if type(m) is nn.LeakyReLU:
        return {"op": "leaky_relu", "slope": float(m.negative_slope)}
    if type(m) is nn.GELU:
        return {"op": "gelu_tanh" if m.approximate == "tanh" else "gelu"}
    if type(m) is Normalize:
        return {"op": "normalize", "mean": [float(v) for v in m.mean.reshape(-1)], "std": [float(v) for v in m.std.reshape(-1)]}
    for cls, name in ((nn.ReLU, "relu"), (nn.Tanh, "tanh"), (nn.Sigmoid, "sigmoid")):
        if type(m) is cls:
            return {"op": name}
    raise ValueError(f"{where}: {type(m).__name__} is not a layer predcode has; it takes Linear, Conv2d, MaxPool2d, AvgPool2d, "
                     "ReLU, LeakyReLU, Tanh, Sigmoid, GELU, Flatten and predcode_torch.Normalize")


def _blocks(model):
    """The model's blocks, each a list of its layers: a Sequential block's, or the one layer a block is."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"the model is a {type(model).__name__}; predcode takes an nn.Sequential of blocks, as Torch2PC does")
    out = []
    for b, block in enumerate(model):
        layers = list(block) if isinstance(block, nn.Sequential) else [block]
        if not layers:
            raise ValueError(f"block {b} is empty")
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Sequential):
                raise ValueError(f"block {b}, layer {i} is itself an nn.Sequential; predcode's blocks hold layers, one level deep")
        out.append(layers)
    return out


def spec_of(model, input_shape):
    """predcode's spec of a Torch2PC-style model, for one sample of input_shape (e.g. (1, 28, 28), or (784,))."""
    blocks = [[_op(layer, f"block {b}, layer {i} ({type(layer).__name__})") for i, layer in enumerate(block)]
              for b, block in enumerate(_blocks(model))]
    return {"input": [int(d) for d in input_shape], "blocks": blocks}


def export(model, input_shape, out):
    """Writes the model as a predcode model folder: out/model.json (the spec) and out/model.safetensors (the
    parameters, float32, under predcode's names). Runs the model once on zeros first, so a shape that does not
    fit fails here, in torch's words. Returns the spec."""
    spec = spec_of(model, input_shape)
    first = next(model.parameters(), None)  # a model on a GPU, or in float64 as Torch2PC's tests run, takes zeros of its own kind
    with torch.no_grad():
        model(torch.zeros((1,) + tuple(input_shape), dtype=first.dtype if first is not None else torch.float32,
                          device=first.device if first is not None else "cpu"))
    # predcode names layer i of block b "b.i" (a block that is one bare layer too, where torch says "b").
    tensors = {f"{b}.{i}.{name}": p for b, block in enumerate(_blocks(model)) for i, layer in enumerate(block)
               for name, p in layer.named_parameters(recurse=False)}
    os.makedirs(out, exist_ok=True)
    _atomic(os.path.join(out, "model.json"), (json.dumps(spec) + "\n").encode())
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    return spec


def build(spec):
    """The torch.nn.Sequential a predcode spec describes (a dict, or the JSON's list of blocks), with fresh parameters."""
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


def load(run):
    """A predcode model folder or training output (runs/latest, runs/latest/best, an exported folder) as an
    nn.Sequential in eval mode, its parameters loaded with strict=True."""
    model = build(json.load(open(os.path.join(run, "model.json"))))
    model.load_state_dict(read_safetensors(os.path.join(run, "model.safetensors")), strict=True)
    return model.eval()


def load_into(model, run):
    """Copies a predcode model folder's parameters into model, in place (the model export() took, or one built the
    same way), and returns it. Refuses a folder whose model.json is another architecture, naming the first difference."""
    theirs = json.load(open(os.path.join(run, "model.json")))
    mine = spec_of(model, theirs.get("input", []) if isinstance(theirs, dict) else [])
    theirs = theirs if isinstance(theirs, dict) else {"blocks": theirs}  # a spec may be the bare list of blocks
    for b, (x, y) in enumerate(zip(mine["blocks"], theirs["blocks"])):
        if _float32(x) != _float32(y):
            raise ValueError(f"{run}/model.json: block {b} is {json.dumps(y)}, the model's is {json.dumps(x)}")
    if len(mine["blocks"]) != len(theirs["blocks"]):
        raise ValueError(f"{run}/model.json: {len(theirs['blocks'])} blocks, the model has {len(mine['blocks'])}")
    params = read_safetensors(os.path.join(run, "model.safetensors"))
    with torch.no_grad():
        for b, block in enumerate(_blocks(model)):
            for i, layer in enumerate(block):
                for name, p in layer.named_parameters(recurse=False):
                    if f"{b}.{i}.{name}" not in params:
                        raise ValueError(f"{run}/model.safetensors: no tensor '{b}.{i}.{name}'")
                    p.copy_(params.pop(f"{b}.{i}.{name}"))
    if params:
        raise ValueError(f"{run}/model.safetensors: tensors the model does not have: {', '.join(sorted(params))}")
    return model


def _float32(v):
    """v with every float rounded to float32, as predcode keeps them (a slope, a normalize op's constants)."""
    if isinstance(v, float):
        return struct.unpack("<f", struct.pack("<f", v))[0]
    if isinstance(v, list):
        return [_float32(e) for e in v]
    if isinstance(v, dict):
        return {k: _float32(e) for k, e in v.items()}
    return v


def read_safetensors(path):
    """The float32 tensors of a safetensors file, by name (metadata left out)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}' is {t['dtype']}; predcode writes F32")
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(t["shape"])
    return out


def write_safetensors(path, tensors):
    """Writes tensors (name -> tensor) as float32 safetensors, atomically: a whole file or none."""
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    _atomic(path, struct.pack("<Q", len(h)) + h + b"".join(blobs))


def cifar10_binary(src, out):
    """Writes CIFAR-10's Python version (torchvision's cifar-10-batches-py, or the folder that holds it) as the binary
    version predcode reads: out/data_batch_1.bin .. data_batch_5.bin and test_batch.bin, each record a label byte and
    the image's 3072 bytes, channel by channel, as in the pickles' rows. Unpickles the files: use it on your own downloads."""
    import pickle
    if os.path.isdir(os.path.join(src, "cifar-10-batches-py")):
        src = os.path.join(src, "cifar-10-batches-py")
    os.makedirs(out, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(os.path.join(src, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data, labels = batch[b"data"], batch[b"labels"]
        if data.dtype.name != "uint8" or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != data.shape[0]:
            raise ValueError(f"{os.path.join(src, name)}: expected uint8 data of [N, 3072] and N labels, got {data.dtype} {list(data.shape)} and {len(labels)}")
        records = bytearray()
        for label, row in zip(labels, data):
            if not 0 <= label <= 9:
                raise ValueError(f"{os.path.join(src, name)}: label {label}, expected 0..9")
            records.append(label)
            records += row.tobytes()
        _atomic(os.path.join(out, name + ".bin"), bytes(records))


def npy_folder(train, test, out, classes=None):
    """Writes a data set as the folder `./predcode train --data npy:OUT` reads: out/x_train.npy, y_train.npy, x_test.npy,
    y_test.npy, and classes.txt where there are class names; or, where `out` ends in .npz, one archive of those arrays
    (np.savez_compressed, the class names as its `classes` array) that `--data npy:OUT.npz` reads. `train` and `test`
    are each a pair (inputs, labels) of tensors or arrays, or a torch Dataset of (input, label) samples (a torchvision
    data set with its transform, say), stacked in order. Inputs are (N, F), (N, H, W), (N, C, H, W) or, as Keras keeps
    images, (N, H, W, C) (predcode transposes those as it reads them); uint8 inputs stay
    bytes (predcode divides them by 255), others are written as float32. `classes` names the classes; a data set's own
    `.classes` is taken otherwise."""
    import io
    import numpy as np
    arrays = {}
    for part, data in (("train", train), ("test", test)):
        if isinstance(data, (tuple, list)) and len(data) == 2:
            x, y = data
        else:
            samples = [data[i] for i in range(len(data))]
            x = torch.stack([torch.as_tensor(s[0]) for s in samples])
            y = torch.as_tensor([int(s[1]) for s in samples])
        x = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
        y = y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
        arrays[f"x_{part}"] = np.ascontiguousarray(x if x.dtype == np.uint8 else x.astype(np.float32))
        arrays[f"y_{part}"] = np.ascontiguousarray(y.astype(np.int64))
    classes = classes or getattr(train, "classes", None)
    out = os.fspath(out)  # a str or a pathlib.Path
    if out.endswith(".npz"):
        if classes:
            arrays["classes"] = np.array([str(c) for c in classes])
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        _atomic(out, buffer.getvalue())
        return
    os.makedirs(out, exist_ok=True)
    for name, a in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, a)
        _atomic(os.path.join(out, name + ".npy"), buffer.getvalue())
    if classes:
        _atomic(os.path.join(out, "classes.txt"), ("\n".join(str(c) for c in classes) + "\n").encode())


def _atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="predcode and PyTorch: convert CIFAR-10's Python version to the binary one predcode reads")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cifar10-binary", help="torchvision's cifar-10-batches-py (or the folder holding it) to data_batch_*.bin, test_batch.bin")
    c.add_argument("src")
    c.add_argument("out")
    a = ap.parse_args()
    cifar10_binary(a.src, a.out)
    print(f"wrote {a.out}: train with ./predcode train --data cifar10:{a.out}")
