#!/usr/bin/env python3
"""Load a downhill model into PyTorch and check that it predicts what downhill predicts.

    python3 scripts/pytorch_check.py runs/<time>/model.safetensors [--downhill target/release/downhill]
    python3 scripts/pytorch_check.py runs/<time>/model.safetensors --csv table.csv
    python3 scripts/pytorch_check.py --demo DIR

1. builds the `nn.Sequential` that the model's metadata describes (Linear, activations, Dropout,
   Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d/2d, Flatten; image inputs reshaped to the
   metadata's `input_shape`);
2. `model.load_state_dict(safetensors.torch.load_file(path))` with strict=True;
3. feeds it rows prepared from the metadata alone and compares with `downhill predict` on the
   same rows: the first 500 embedded digits (pixels normalised with the stored statistics), or
   with --csv the rows of a CSV file, whose cells are turned into features by `csv_features`
   below from the metadata's `columns` (roles, medians, categories, indicators), then
   normalised, and for a regression mapped back with `target_scaling`.

--demo DIR writes a table with text, yes/no, ID, constant and missing cells, trains a
classification and a regression (target in the hundreds) with downhill, and checks both on a CSV
with unseen categories and missing cells.

Needs torch and safetensors (pip install torch safetensors). Exits 0 when every predicted class
agrees and probabilities (or values, relatively) agree to 1e-5; 1 otherwise; 2 when torch is not
installed.
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
        kind, args = layer["type"], layer.get("args")
        if kind == "dense":
            layers.append(torch.nn.Linear(args["inputs"], args["outputs"]))
        elif kind == "activation":
            layers.append(ACTIVATIONS[args]())
        elif kind == "dropout":
            layers.append(torch.nn.Dropout(args))
        elif kind == "conv2d":
            layers.append(torch.nn.Conv2d(args["in_channels"], args["out_channels"], tuple(args["kernel"]),
                                          stride=tuple(args["stride"]), padding=tuple(args["padding"]),
                                          bias=args["bias"]))
        elif kind in ("max-pool2d", "avg-pool2d"):
            pool = torch.nn.MaxPool2d if kind == "max-pool2d" else torch.nn.AvgPool2d
            layers.append(pool(tuple(args["kernel"]), stride=tuple(args["stride"]), padding=tuple(args["padding"])))
        elif kind in ("batch-norm1d", "batch-norm2d"):
            bn = torch.nn.BatchNorm1d if kind == "batch-norm1d" else torch.nn.BatchNorm2d
            layers.append(bn(args["channels"], eps=args["eps"], momentum=args["momentum"]))
        elif kind == "flatten":
            layers.append(torch.nn.Flatten())
        else:
            raise SystemExit(f"unknown layer {kind}")
    return torch.nn.Sequential(*layers)


# The preprocessing of downhill's data::columns, from the model's metadata alone.
MISSING = {"", "na", "n/a", "nan", "null", "?"}
TRUE_WORDS = {"true", "yes", "y", "t"}
FALSE_WORDS = {"false", "no", "n", "f"}


def is_missing(cell):
    return cell.strip().lower() in MISSING


def csv_features(meta, path):
    """The network's inputs (before normalisation) for every row of a CSV file, as floats."""
    cols = meta["columns"]
    with open(path, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if r and any(c.strip() for c in r)]
    names = [c["name"] for c in cols["columns"]]
    used = [c["name"] for c in cols["columns"] if c["encoding"]["kind"] != "dropped"]
    if cols["has_header"] and all(n in rows[0] for n in used):
        header, rows = rows[0], rows[1:]
        where = {n: header.index(n) for n in names if n in header}
    else:
        width = len(cols["columns"]) + len(cols["targets"])
        if len(rows[0]) == width:
            pos = [j for j in range(width) if j not in cols["target_positions"]]
        else:
            pos = list(range(len(cols["columns"])))
        where = dict(zip(names, pos))
    out = []
    for r in rows:
        x = []
        for c in cols["columns"]:
            enc = c["encoding"]
            kind = enc["kind"]
            if kind == "dropped":
                continue
            cell = r[where[c["name"]]]
            miss = is_missing(cell)
            if kind == "numeric":
                x.append(enc["fill"] if miss else float(cell))
            elif kind == "boolean":
                v = enc["fill"] if miss else cell.lower() in TRUE_WORDS
                if not miss and cell.lower() not in TRUE_WORDS | FALSE_WORDS:
                    raise SystemExit(f"{cell!r} is not a yes/no word")
                x.append(1.0 if v else 0.0)
            elif kind == "categorical":
                value = enc["fill"] if miss else cell
                x.extend(1.0 if value == k else 0.0 for k in enc["categories"])  # unseen: all 0
            else:
                raise SystemExit(f"unknown column kind {kind}")
            if c["indicator"]:
                x.append(1.0 if miss else 0.0)
        out.append(x)
    return out


def check_csv(a, meta, model):
    """Predictions of PyTorch on --csv rows prepared from the metadata vs. `downhill predict`."""
    x = torch.tensor(csv_features(meta, a.csv), dtype=torch.float32)
    shift = torch.tensor(meta["normalizer"]["shift"])
    scale = torch.tensor(meta["normalizer"]["scale"])
    with torch.no_grad():
        z = model((x - shift) * scale)
    loss = meta["loss"]
    args = [a.downhill, "predict", "--model", a.model, "--input", a.csv]
    if loss != "mse":
        args.insert(2, "--proba")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    table = list(csv.reader(io.StringIO(out)))[1:]
    n = len(table)
    if loss == "cross-entropy":
        p_torch = torch.softmax(z, dim=1)
        names = meta["class_names"]
        p_ours = torch.tensor([[float(v) for v in r[1:]] for r in table])
        same = sum(r[0] == names[i] for r, i in zip(table, p_torch.argmax(dim=1).tolist()))
        diff = (p_ours - p_torch).abs().max().item()
        print(f"{n} rows: predicted classes agree on {same}; max |p_downhill - p_torch| = {diff:.2e}")
        return same == n and diff < 1e-5
    if loss == "bce":
        p_torch = torch.sigmoid(z)
        p_ours = torch.tensor([[float(v) for v in r[1::2]] for r in table])
        diff = (p_ours - p_torch).abs().max().item()
        print(f"{n} rows: max |p_downhill - p_torch| = {diff:.2e}")
        return diff < 1e-5
    ts = meta.get("target_scaling")
    if ts:
        z = z.double() * torch.tensor(ts["std"], dtype=torch.float64) + torch.tensor(ts["mean"], dtype=torch.float64)
    y_ours = torch.tensor([[float(v) for v in r] for r in table], dtype=torch.float64)
    rel = ((y_ours - z.double()).abs() / z.double().abs().clamp(min=1.0)).max().item()
    print(f"{n} rows: max relative |y_downhill - y_torch| = {rel:.2e}" + (f" (targets scaled back: mean {ts['mean']}, std {ts['std']})" if ts else ""))
    return rel < 1e-5


def demo(a):
    """Messy tables trained with downhill, then checked here from the metadata alone."""
    import random

    d = Path(a.demo)
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    head = "row_id,island,bill,flipper,male,study,species,mass\n"
    lines = []
    for i in range(400):
        k = i % 3
        island = [rng.choice(["Biscoe", "Dream", "Torgersen"]), "Biscoe", "Dream"][k]
        bill = [38, 47, 49][k] + rng.uniform(-2, 2)
        flipper = [190, 217, 196][k] + rng.uniform(-4, 4)
        b = rng.choice(["NA", "", "?", "NaN"]) if rng.random() < 0.1 else f"{bill:.1f}"
        m = rng.choice(["NA", ""]) if rng.random() < 0.08 else rng.choice(["yes", "No", "TRUE", "f"])
        mass = 20 * (bill + 0.3 * flipper + (5 if m in ("yes", "TRUE") else 0)) + 100
        lines.append(f"{1000 + i},{island},{b},{flipper:.0f},{m},PAL0708,{['Adelie', 'Gentoo', 'Chinstrap'][k]},{mass:.1f}\n")
    train = d / "penguins.csv"
    train.write_text(head + "".join(lines))
    new = d / "new.csv"
    new.write_text(
        "flipper,male,island,bill,row_id,study\n"
        "190,yes,Biscoe,38.2,1,PAL0708\n217,NA,Atlantis,47.5,2,PAL0708\n196,no,,NA,3,x\n"
        "201,,Dream,?,4,PAL0708\n185,t,Torgersen,39,5,\n"
    )
    ok = True
    for target, extra in [("species", ["--drop", "mass"]), ("mass", ["--drop", "species"])]:
        run = d / target
        subprocess.run([a.downhill, "train", "--quiet", "--epochs", "40", "--data", str(train), "--target", target, "--out", str(run)] + extra, check=True)
        a.model, a.csv = str(run / "model.safetensors"), str(new)
        print(f"== {target}")
        ok &= check_one(a)
    return ok


def check_one(a):
    with safe_open(a.model, framework="pt") as f:
        meta = json.loads(f.metadata()["downhill"])
    model = build(meta)
    model.load_state_dict(load_file(a.model), strict=True)  # raises on any name or shape mismatch
    model.eval()
    print(f"loaded {a.model} into {model}")
    if a.csv:
        return check_csv(a, meta, model)
    return check_digits(a, meta, model)


def main():
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?")
    p.add_argument("--downhill", default=str(root / "target/release/downhill"))
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--csv", help="a CSV of the model's columns (needs a model trained on a CSV)")
    p.add_argument("--demo", metavar="DIR", help="train on messy tables in DIR and check them")
    a = p.parse_args()
    if a.demo:
        ok = demo(a)
    elif a.model:
        ok = check_one(a)
    else:
        p.error("give a model file, or --demo DIR")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


def check_digits(a, meta, model):
    """The first rows of the embedded digits, normalised with the stored statistics."""
    root = Path(__file__).resolve().parent.parent
    with gzip.open(root / "data/mnist-5k.csv.gz", "rt") as f:
        rows = [r[:784] for _, r in zip(range(5000), csv.reader(f))][:: 5000 // a.rows][: a.rows]
    x = torch.tensor([[float(v) for v in r] for r in rows])
    shift = torch.tensor(meta["normalizer"]["shift"])
    scale = torch.tensor(meta["normalizer"]["scale"])
    x = (x - shift) * scale
    if meta.get("input_shape"):  # images: [N, C, H, W]
        s = meta["input_shape"]
        x = x.reshape(-1, s["channels"], s["height"], s["width"])
    with torch.no_grad():
        p_torch = torch.softmax(model(x), dim=1)

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
    return same == len(rows) and diff < 1e-5


if __name__ == "__main__":
    main()
