"""The big-table workload side by side with pandas: one generated CSV (1,000,000 rows x 42
columns by default: numbers with missing cells, text, a 0/1 target y), read by pandas.read_csv and
loaded by `downhill bench --only table --table-file` (read, columns fitted, encoded, split,
standardised) in turns, each in its own process; medians of the repeats, and each one's peak
memory.

    bench/.venv/bin/python bench/table_load.py [--rows N] [--repeats 3] [--downhill PATH]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--rows", type=int, default=1_000_000)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--downhill", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "downhill"))
args = p.parse_args()

PANDAS = """
import resource, sys, time
import pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
s = time.perf_counter() - t
print(s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, df.shape[0])
"""


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "table.csv")
    subprocess.run([args.downhill, "bench", "--write-table", path, "--table-rows", str(args.rows)], check=True, stdout=subprocess.DEVNULL)
    size = os.path.getsize(path)
    pandas, downhill = [], []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", PANDAS, path], check=True, capture_output=True, text=True).stdout.split()
        pandas.append((float(out[0]), int(out[1])))
        out = subprocess.run([args.downhill, "bench", "--only", "table", "--table-file", path, "--json"], check=True, capture_output=True, text=True).stdout
        m = json.loads(out)[0]
        downhill.append((m["load_seconds"], m["peak_rss_bytes"] or 0, m["epoch_seconds"], m["encoded_bytes"]))
    pl = statistics.median(t for t, _ in pandas)
    dl = statistics.median(t for t, *_ in downhill)
    de = statistics.median(m[2] for m in downhill)
    mb = lambda b: b / 1e6
    print(f"{cpu()}, {os.cpu_count()} CPUs; {args.rows} rows, {mb(size):.0f} MB file; medians of {args.repeats}")
    print(f"pandas.read_csv        {pl:6.2f} s   peak {mb(max(m for _, m in pandas)):6.0f} MB")
    print(f"downhill load          {dl:6.2f} s   peak {mb(max(m[1] for m in downhill)):6.0f} MB (after 1 epoch of 256-256 in {de:.2f} s; encoded matrices {mb(downhill[0][3]):.0f} MB)")
    print(f"load / pandas          {dl / pl:6.2f}   (target ≤ 1); peak / (2 × encoded + file) {max(m[1] for m in downhill) / (2 * downhill[0][3] + size):.2f} (target ≤ 1)")
