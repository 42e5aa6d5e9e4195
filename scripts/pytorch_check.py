#!/usr/bin/env python3
"""Load a downhill model into PyTorch and check that it predicts what downhill predicts.

    python3 scripts/pytorch_check.py runs/<time>/model.safetensors [--downhill target/release/downhill]

1. builds the `nn.Sequential` that the model's metadata describes (Linear, activations, Dropout);
2. `model.load_state_dict(safetensors.torch.load_file(path))` with strict=True;
3. feeds it the first 500 embedded digits (normalised with the statistics stored in the file)
   and compares class probabilities with `downhill predict --proba` on the same rows.

Needs torch and safetensors (pip install torch safetensors). Exits 0 when every predicted class
agrees and probabilities agree to 1e-5; 1 otherwise; 2 when torch is not installed.
"""
import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError:
    print("torch or safetensors is not installed: pip install torch safetensors", file=sys.stderr)
    sys.exit(2)

ACTIVATIONS = {
    "identity": torch.nn.Identity,
    "sigmoid": torch.nn.Sigmoid,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "leaky-relu": lambda: torch.nn.LeakyReLU(0.01),
    "gelu": torch.nn.GELU,
}


def build(meta):
    layers = []
    for layer in meta["layers"]:
        kind, args = layer["type"], layer["args"]
        if kind == "dense":
            layers.append(torch.nn.Linear(args["inputs"], args["outputs"]))
        elif kind == "activation":
            layers.append(ACTIVATIONS[args]())
        elif kind == "dropout":
            layers.append(torch.nn.Dropout(args))
        else:
            raise SystemExit(f"unknown layer {kind}")
    return torch.nn.Sequential(*layers)


def main():
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--downhill", default=str(root / "target/release/downhill"))
    p.add_argument("--rows", type=int, default=500)
    a = p.parse_args()

    with safe_open(a.model, framework="pt") as f:
        meta = json.loads(f.metadata()["downhill"])
    model = build(meta)
    model.load_state_dict(load_file(a.model), strict=True)  # raises on any name or shape mismatch
    model.eval()
    print(f"loaded {a.model} into {model}")

    with gzip.open(root / "data/mnist-5k.csv.gz", "rt") as f:
        rows = [r[:784] for _, r in zip(range(5000), csv.reader(f))][:: 5000 // a.rows][: a.rows]
    x = torch.tensor([[float(v) for v in r] for r in rows])
    shift = torch.tensor(meta["normalizer"]["shift"])
    scale = torch.tensor(meta["normalizer"]["scale"])
    with torch.no_grad():
        p_torch = torch.softmax(model((x - shift) * scale), dim=1)

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as tmp:
        csv.writer(tmp).writerows(rows)
    out = subprocess.run([a.downhill, "predict", "--proba", "--model", a.model, "--input", tmp.name], check=True, capture_output=True, text=True).stdout
    table = list(csv.reader(io.StringIO(out)))[1:]
    names = meta["class_names"]
    p_ours = torch.tensor([[float(v) for v in r[1:]] for r in table])
    classes_ours = [r[0] for r in table]
    classes_torch = [names[i] for i in p_torch.argmax(dim=1).tolist()]
    diff = (p_ours - p_torch).abs().max().item()
    same = sum(c == d for c, d in zip(classes_ours, classes_torch))
    print(f"{len(rows)} rows: predicted classes agree on {same}; max |p_downhill - p_torch| = {diff:.2e}")
    ok = same == len(rows) and diff < 1e-5
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
