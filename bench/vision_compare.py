#!/usr/bin/env python3
"""Run downhill and PyTorch alternately on the vision workloads; print the epoch-time ratios,
downhill's two-thread speed-up and both programs' peak memory.

    /work/main/bench/.venv/bin/python bench/vision_compare.py [--rounds 3] [--epochs 2]
        [--nets keras-convnet,lenet5] [--downhill target/release/downhill]

Each round, for each network: `downhill bench --json --only "cnn NET, batch 128, 1 thread"`, then
PyTorch's `torch_cnn.py --net NET --threads 1` (Fashion-MNIST, batch 128, Adam 1e-3: the same
network, data and optimiser), then downhill with 2 threads — one after the other, so that all see
the same machine state. Reported per network: the median seconds per epoch of each, the ratio
downhill / PyTorch (min / median / max over the rounds; the issue's target is ≤ 0.4), downhill's
two-thread speed-up (target ≥ 1.8) and the peak resident memory of each process (from
`/usr/bin/time -v`, target ≤ 300 MiB). torch_cnn.py is looked up beside this repository
(../shared/bench/torch_cnn.py) unless --torch-cnn is given. Not run in CI.

Note: downhill trains on the 60,000 training images with `downhill bench`, as torch_cnn.py does;
both report the training time of an epoch only (not loading, not evaluation).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--nets", default="keras-convnet,lenet5")
p.add_argument("--downhill", default=str(root / "target/release/downhill"))
p.add_argument("--python", default=sys.executable, help="a Python with torch and numpy")
p.add_argument("--torch-cnn", default=str(root.parent / "shared/bench/torch_cnn.py"))
a = p.parse_args()

TORCH_NAME = {"keras-convnet": "keras", "lenet5": "lenet"}
env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (stdout, peak RSS in MiB)."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return r.stdout, (int(m.group(1)) / 1024 if m else float("nan"))


def downhill(net, threads):
    name = f"cnn {net}, batch 128, {threads} thread{'s' if threads > 1 else ''}"
    out, mib = timed([a.downhill, "bench", "--json", "--epochs", str(a.epochs), "--only", name])
    (m,) = [m for m in json.loads(out) if m["workload"]["name"] == name]
    return m, mib


def torch(net):
    out, mib = timed([a.python, a.torch_cnn, "--net", TORCH_NAME[net], "--epochs", str(a.epochs),
                      "--threads", "1"])
    return json.loads(out.strip().splitlines()[-1]), mib


nets = a.nets.split(",")
rows = {net: {"one": [], "two": [], "torch": [], "mem_one": [], "mem_two": [], "mem_torch": [],
              "floor": [], "share": []} for net in nets}
for r in range(a.rounds):
    for net in nets:
        m1, mem1 = downhill(net, 1)
        t, memt = torch(net)
        m2, mem2 = downhill(net, 2)
        row = rows[net]
        row["one"].append(m1["seconds_per_epoch"])
        row["two"].append(m2["seconds_per_epoch"])
        row["torch"].append(t["median_epoch_s"])
        row["floor"].append(m1["floor_seconds_per_epoch"])
        row["share"].append(m1["share_of_floor"])
        row["mem_one"].append(mem1)
        row["mem_two"].append(mem2)
        row["mem_torch"].append(memt)
        print(f"round {r + 1}/{a.rounds} {net}: downhill {m1['seconds_per_epoch']:.2f} s, "
              f"2 threads {m2['seconds_per_epoch']:.2f} s, PyTorch {t['median_epoch_s']:.2f} s",
              file=sys.stderr)


def mmm(v):
    return f"{min(v):.2f} / {statistics.median(v):.2f} / {max(v):.2f}"


print(f"{'network (batch 128, Adam)':<26} {'downhill':>9} {'PyTorch':>8}  {'ratio min/med/max':>18}  "
      f"{'2 threads':>9}  {'speed-up min/med/max':>20}  {'floor':>6} {'share':>5}  peak MiB (1 thr / 2 thr / PyTorch)")
for net, row in rows.items():
    ratio = [o / t for o, t in zip(row["one"], row["torch"])]
    speedup = [o / t for o, t in zip(row["one"], row["two"])]
    print(f"{net:<26} {statistics.median(row['one']):>9.2f} {statistics.median(row['torch']):>8.2f}  "
          f"{mmm(ratio):>18}  {statistics.median(row['two']):>9.2f}  {mmm(speedup):>20}  "
          f"{statistics.median(row['floor']):>6.2f} {statistics.median(row['share']):>5.2f}  "
          f"{max(row['mem_one']):.0f} / {max(row['mem_two']):.0f} / {max(row['mem_torch']):.0f}")
print("(seconds per epoch of 60,000 images; ratio = downhill / PyTorch, one thread each)")
