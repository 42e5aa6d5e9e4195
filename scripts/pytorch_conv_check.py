#!/usr/bin/env python3
"""Step-for-step equality of downhill and PyTorch on a convolutional network.

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-golden.txt
    .venv/bin/python scripts/pytorch_conv_check.py [--downhill target/release/downhill]
    ... scripts/pytorch_conv_check.py --golden > tests/suite/layers/pytorch_conv/golden.rs

For SGD with momentum 0.9 (η 0.05) and for Adam (η 0.001), on the first 512 embedded digits
(every 5,000/512-th row, 1×28×28, pixels / 255), batch 64, no shuffling, two epochs:

1. PyTorch builds the network below (Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d, BatchNorm1d,
   Linear) in float32 with its own default initialisation and saves its state_dict with
   `safetensors.torch.save_file` (BatchNorm's num_batches_tracked an I64 scalar);
2. `downhill train --layers SPEC --init that-file --no-shuffle ...` trains from those weights;
3. PyTorch trains its copy the same way (model.train(), CrossEntropyLoss, the optimiser's
   defaults but lr and momentum);
4. downhill's model file is loaded back into PyTorch with `load_state_dict(strict=True)`, and
   every tensor — weights, biases, γ, β, running mean and variance, num_batches_tracked — is
   compared. Passes when the max abs difference is ≤ 1e-4 and num_batches_tracked agrees.
   Then the eval-mode predictions of both on all 512 images are compared (≤ 1e-5).

--golden prints a Rust module (tests/suite/layers/pytorch_conv/golden.rs) with PyTorch's initial and
final tensors, for tests/suite/layers/pytorch_conv.rs, which trains with the library and compares.
Exit 0 on PASS, 1 on FAIL, 2 when torch is missing.
"""
import argparse
import csv
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file, save_file
except ImportError:
    print("torch or safetensors is not installed", file=sys.stderr)
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
# A convolution right before BatchNorm has no bias (as in PyTorch's ResNets): BatchNorm subtracts
# the batch mean, so such a bias has a gradient of exactly 0 in exact arithmetic, and what the
# float arithmetic leaves of it is rounding noise — which Adam, dividing by its root mean square,
# turns into full-size steps of ±η in directions that differ between the two implementations.
# For the same reason BatchNorm1d comes after a ReLU here (after a dense layer its bias would be
# such a parameter; right after the pooled BatchNorm2d features, that layer's γ would be at the
# start, while its β is 0 and ReLU(γ·x̂) scales with γ).
SPEC = ("conv 6 3 nobias, batchnorm, relu, maxpool 2, conv 8 3 stride 2 pad 1 nobias, batchnorm, tanh, "
        "avgpool 2, flatten, batchnorm, dense 16, relu, dense 10")
N, BATCH, EPOCHS, SEED = 512, 64, 2, 0
import os
LR = os.environ.get("SGD_LR", "0.05")
OPTIMIZERS = {
    "sgd": (["--optimizer", "sgd", "--lr", LR, "--momentum", "0.9"],
            lambda p: torch.optim.SGD(p, lr=float(LR), momentum=0.9)),
    "adam": (["--optimizer", "adam", "--lr", "0.001"],
             lambda p: torch.optim.Adam(p, lr=0.001)),
}


def network():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.BatchNorm1d(72), nn.Linear(72, 16), nn.ReLU(), nn.Linear(16, 10))


def digits():
    with gzip.open(ROOT / "data/mnist-5k.csv.gz", "rt") as f:
        rows = list(csv.reader(f))
    rows = rows[:: len(rows) // N][:N]
    x = torch.tensor([[float(v) for v in r[:784]] for r in rows]) / 255.0
    y = torch.tensor([int(r[784]) for r in rows])
    return rows, x.reshape(-1, 1, 28, 28), y


def train_torch(model, opt, x, y):
    model.train()
    lossf = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        for s in range(0, N, BATCH):
            opt.zero_grad()
            lossf(model(x[s:s + BATCH]), y[s:s + BATCH]).backward()
            opt.step()
    return model


def run(a, name, rows, x, y, tmp):
    flags, make_opt = OPTIMIZERS[name]
    torch.manual_seed(SEED)
    model = network()
    init = tmp / f"init-{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(init))
    data = tmp / "digits.csv"
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    out = tmp / f"run-{name}"
    cmd = [a.downhill, "train", "--data", str(data), "--image-shape", "1x28x28", "--normalize", "scale",
           "--layers", SPEC, "--init", str(init), "--no-shuffle", "--batch-size", str(BATCH),
           "--epochs", str(EPOCHS), "--test-fraction", "0", "--val-fraction", "0", "--patience", "0",
           "--divergence-factor", "0", "--quiet", "--out", str(out)] + flags
    subprocess.run(cmd, check=True)
    train_torch(model, make_opt(model.parameters()), x, y)
    ours = load_file(str(out / "model.safetensors"))
    check = network()
    check.load_state_dict(ours, strict=True)  # raises on any name, shape or missing buffer
    worst, where = 0.0, ""
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if int(v) != int(ours[k]):
                print(f"  {k}: PyTorch {int(v)}, downhill {int(ours[k])}")
                return False, model
            continue
        d = (v.double() - ours[k].double()).abs().max().item()
        if a.verbose:
            print(f"  {k}: {d:.2e}")
        if d > worst:
            worst, where = d, k
    model.eval()
    check.eval()
    with torch.no_grad():
        pd = (torch.softmax(model(x), 1) - torch.softmax(check(x), 1)).abs().max().item()
    ok = worst <= 1e-4 and pd <= 1e-5
    print(f"{name}: after {EPOCHS} epochs ({EPOCHS * N // BATCH} steps) max |w_torch - w_downhill| = "
          f"{worst:.2e} (at {where}); num_batches_tracked equal; eval probabilities differ by "
          f"{pd:.2e} -> {'ok' if ok else 'FAIL'}")
    return ok, model


def rust_array(name, values):
    # float32 values: 9 significant digits give the same f32 back.
    lit = lambda t: t if any(c in t for c in ".e") else t + ".0"  # 1 -> 1.0, a float literal
    body = ", ".join(lit(f"{v:.9g}") for v in values)
    return f"pub const {name}: [f32; {len(values)}] = [{body}];\n"


def golden(x, y):
    """The Rust module of tests/suite/layers/pytorch_conv.rs: PyTorch's initial and final state_dicts."""
    print("//! PyTorch's state_dict before and after two epochs of the network of")
    print(f"//! scripts/pytorch_conv_check.py (torch {torch.__version__}, float32, 512 embedded digits,")
    print("//! batch 64, no shuffling), generated by")
    print("//! `python scripts/pytorch_conv_check.py --golden` (packages: scripts/requirements-golden.txt).")
    print("//! Tensors in state_dict order (ORDER), num_batches_tracked left out (16 after training).")
    print("#![allow(clippy::excessive_precision, clippy::approx_constant, dead_code)]\n")
    print(f'pub const SPEC: &str = "{SPEC}";')
    names = [k for k in network().state_dict() if not k.endswith("tracked")]
    print(f"pub const ORDER: &str = {json.dumps(' '.join(names))};")
    flat = lambda m: torch.cat([m.state_dict()[k].flatten() for k in names]).tolist()
    torch.manual_seed(SEED)
    print(rust_array("INIT", flat(network())))
    for name, (_, make_opt) in OPTIMIZERS.items():
        torch.manual_seed(SEED)
        model = network()
        train_torch(model, make_opt(model.parameters()), x, y)
        print(rust_array(f"{name.upper()}_FINAL", flat(model)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--downhill", default=str(ROOT / "target/release/downhill"))
    p.add_argument("--golden", action="store_true", help="print the Rust golden module instead")
    p.add_argument("--verbose", action="store_true", help="print each tensor's difference")
    a = p.parse_args()
    torch.set_num_threads(1)
    rows, x, y = digits()
    if a.golden:
        return golden(x, y)
    with tempfile.TemporaryDirectory() as d:
        results = [run(a, name, rows, x, y, Path(d))[0] for name in OPTIMIZERS]
    ok = all(results)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
