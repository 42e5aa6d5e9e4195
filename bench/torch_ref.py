#!/usr/bin/env python3
"""PyTorch reference for downhill's standard workloads (not run in CI).

    python3 bench/torch_ref.py [--epochs 3] [--threads 1] [--json] [--only "batch 256"]
    python3 bench/torch_ref.py --accuracy --optimizer adam --lr 1e-3 --epochs 5 --seed 0

Timing mode: a plain PyTorch training loop (MLP, ReLU, softmax cross-entropy, SGD lr 0.1
momentum 0.9, shuffled mini-batches, data in memory as float32 in [0, 1]) on Fashion-MNIST's
60,000 training images; prints seconds per epoch (median) per workload, like `downhill bench`.
Accuracy mode: trains 784-100-10 with the given optimiser and prints the test accuracy.
Data: the Debian package dataset-fashion-mnist. Exits 2 if torch is missing.
"""
import argparse
import gzip
import json
import statistics
import sys
import time

try:
    import numpy as np
    import torch
except ImportError:
    print("torch is not installed (pip install torch numpy); skipping the PyTorch reference", file=sys.stderr)
    sys.exit(2)

DIR = "/usr/share/datasets/fashion-mnist"
WORKLOADS = [([784, 100, 10], 64, 1), ([784, 256, 128, 10], 64, 1), ([784, 256, 128, 10], 256, 1), ([784, 256, 128, 10], 256, 2)]


def idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def load(split):
    x = idx(f"{DIR}/{split}-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255.0
    y = idx(f"{DIR}/{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def epoch(model, opt, x, y, batch, gen):
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(len(x), generator=gen)
    for s in range(0, len(x), batch):
        i = perm[s : s + batch]
        opt.zero_grad(set_to_none=False)
        loss_fn(model(x[i]), y[i]).backward()
        opt.step()


def name(sizes, batch, threads):
    return f"mlp {'-'.join(map(str, sizes))}, batch {batch}, {threads} thread{'' if threads == 1 else 's'}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--only")
    p.add_argument("--json", action="store_true")
    p.add_argument("--accuracy", action="store_true")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    x, y = load("train")
    if a.accuracy:
        torch.set_num_threads(a.threads)
        torch.manual_seed(a.seed)
        gen = torch.Generator().manual_seed(a.seed)
        model = mlp([784, 100, 10])
        opt = torch.optim.Adam(model.parameters(), lr=a.lr) if a.optimizer == "adam" else torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
        for _ in range(a.epochs):
            epoch(model, opt, x, y, 64, gen)
        xt, yt = load("t10k")
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        print(json.dumps({"optimizer": a.optimizer, "lr": a.lr, "epochs": a.epochs, "seed": a.seed, "test_accuracy": acc}))
        return
    out = []
    for sizes, batch, threads in WORKLOADS:
        n = name(sizes, batch, threads)
        if a.only and a.only not in n:
            continue
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = mlp(sizes)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        times = []
        for _ in range(a.epochs):
            t = time.perf_counter()
            epoch(model, opt, x, y, batch, gen)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        out.append({"name": n, "seconds_per_epoch": med, "epoch_seconds": times})
        if not a.json:
            print(f"{n:<42} {med:8.3f} s/epoch")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
