#!/usr/bin/env python3
"""Run downhill, PyTorch and NumPy alternately on the standard workloads; print the speed ratios.

    python3 bench/compare.py [--rounds 3] [--epochs 3] [--downhill target/release/downhill]

Each round runs `downhill bench --json` and then `bench/torch_ref.py --json` (same workloads,
same data, same epochs), so both see the same machine state; the ratio PyTorch seconds per
epoch / downhill seconds per epoch is printed per workload with its min / median / max over the
rounds; likewise NumPy (bench/numpy_ref.py, one-thread workloads only), and downhill's own
speed-up from threads (one-thread seconds / N-thread seconds of the same network and batch, same
round). OPENBLAS_CORETYPE is unset for both (this machine sets it to Haswell). Where PyTorch is
not installed, only downhill's figures are printed. Not run in CI.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--downhill", default=str(root / "target/release/downhill"))
p.add_argument("--python", default=sys.executable, help="a Python with torch installed")
a = p.parse_args()
env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}

ours, theirs, numpy = {}, {}, {}
torch_ok = True
for r in range(a.rounds):
    # The dense workloads (the vision ones have bench/vision_compare.py).
    out = subprocess.run([a.downhill, "bench", "--json", "--epochs", str(a.epochs), "--only", "mlp"], check=True, capture_output=True, text=True, env=env).stdout
    for m in json.loads(out):
        if "workload" in m:  # (the big-table workload has its own fields)
            ours.setdefault(m["workload"]["name"], []).append(m["seconds_per_epoch"])
    if torch_ok:
        t = subprocess.run([a.python, str(root / "bench/torch_ref.py"), "--json", "--epochs", str(a.epochs)], capture_output=True, text=True, env=env)
        if t.returncode == 2:
            print("PyTorch is not installed for", a.python, "- printing downhill only", file=sys.stderr)
            torch_ok = False
        else:
            t.check_returncode()
            for m in json.loads(t.stdout):
                theirs.setdefault(m["name"], []).append(m["seconds_per_epoch"])
    for name in list(ours):
        if "1 thread" not in name:
            continue
        arch, batch = name.split(",")[0].split()[1], name.split("batch ")[1].split(",")[0]
        n = subprocess.run([a.python, str(root / "bench/numpy_ref.py"), "--json", "--epochs", str(a.epochs), "--sizes", arch.replace("-", ","), "--batch", batch], capture_output=True, text=True, env=env)
        if n.returncode == 0:
            numpy.setdefault(name, []).append(json.loads(n.stdout)["seconds_per_epoch"])
    print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

print(f"{'workload':<42} {'downhill':>9} {'pytorch':>8}  ratio min/median/max {'numpy':>8}  ratio min/median/max   (seconds per epoch)")
for name, mine in ours.items():
    line = f"{name:<42} {statistics.median(mine):>9.3f}"
    for other in (theirs, numpy):
        if name in other:
            ratios = [t / m for t, m in zip(other[name], mine)]
            line += f" {statistics.median(other[name]):>8.3f}  {min(ratios):5.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}"
        else:
            line += f" {'-':>8}  {'':>18}"
    print(line)

scaling = []
for name, mine in ours.items():
    if "1 thread" in name:
        continue
    base = name.split(", ")[0] + ", " + name.split(", ")[1] + ", 1 thread"
    if base in ours:
        ratios = [o / m for o, m in zip(ours[base], mine)]
        scaling.append(f"{name:<42} {min(ratios):5.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}")
if scaling:
    print(f"\n{'threads vs one thread':<42} speed-up min/median/max")
    print("\n".join(scaling))
