#!/usr/bin/env python3
"""NumPy reference: the same MLP training, vectorised by hand (not run in CI).

    env -u OPENBLAS_CORETYPE python3 bench/numpy_ref.py [--epochs 3] [--sizes 784,100,10] [--batch 64]

Forward X·Wᵀ + b with ReLU, softmax cross-entropy, backprop by matrix products, SGD lr 0.1
momentum 0.9 (PyTorch's rule), float32, Fashion-MNIST's 60,000 training images in memory,
one thread (OPENBLAS_NUM_THREADS=1 is set here). Unset OPENBLAS_CORETYPE (this machine sets it to
Haswell, which halves OpenBLAS's speed) for a fair comparison. Prints the median seconds per epoch.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import argparse
import gzip
import json
import statistics
import sys
import time

try:
    import numpy as np
except ImportError:
    print("numpy is not installed; skipping the NumPy reference", file=sys.stderr)
    sys.exit(2)

DIR = "/usr/share/datasets/fashion-mnist"


def idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sizes", default="784,100,10")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    x = idx(f"{DIR}/train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / np.float32(255)
    y = idx(f"{DIR}/train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    rng = np.random.default_rng(0)
    W = [(rng.standard_normal((o, i)) * np.sqrt(2 / i)).astype(np.float32) for i, o in zip(sizes, sizes[1:])]
    b = [np.zeros(o, np.float32) for o in sizes[1:]]
    vW = [np.zeros_like(w) for w in W]
    vb = [np.zeros_like(v) for v in b]
    lr, mu = np.float32(0.1), np.float32(0.9)
    times = []
    for _ in range(a.epochs):
        t = time.perf_counter()
        perm = rng.permutation(len(x))
        for s in range(0, len(x), a.batch):
            i = perm[s : s + a.batch]
            acts = [x[i]]
            for l, (w, bb) in enumerate(zip(W, b)):
                z = acts[-1] @ w.T + bb
                acts.append(np.maximum(z, 0) if l + 1 < len(W) else z)
            z = acts[-1]
            e = np.exp(z - z.max(axis=1, keepdims=True))
            d = e / e.sum(axis=1, keepdims=True)
            d[np.arange(len(i)), y[i]] -= 1
            d /= np.float32(len(i))
            for l in range(len(W) - 1, -1, -1):
                gW, gb = d.T @ acts[l], d.sum(axis=0)
                if l > 0:
                    d = (d @ W[l]) * (acts[l] > 0)
                vW[l] *= mu
                vW[l] += gW
                vb[l] *= mu
                vb[l] += gb
                W[l] -= lr * vW[l]
                b[l] -= lr * vb[l]
        times.append(time.perf_counter() - t)
    if a.json:
        print(json.dumps({"sizes": sizes, "batch": a.batch, "seconds_per_epoch": statistics.median(times), "epoch_seconds": times}))
    else:
        print(f"numpy mlp {a.sizes}, batch {a.batch}, 1 thread: {statistics.median(times):.3f} s/epoch (epochs {', '.join(f'{t:.3f}' for t in times)})")


if __name__ == "__main__":
    main()
