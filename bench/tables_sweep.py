#!/usr/bin/env python3
"""Experiments for issue 22: downhill candidates (flags over the defaults, through bench/tables.py's
--flags) against the cached references on the tuning tables, summarised as one row per candidate.

    bench/.venv/bin/python bench/tables_sweep.py [--set tuning|held_out] [--only NAME,NAME] [--downhill PATH]
        [--out DIR] [--cached-refs-only]

A flag may depend on the training rows n (`{expr}` in tables.py). Each candidate's full results go to
DIR/<label>.json; the table printed at the end is what docs/book/src/benchmarks/tables-experiments.md
shows.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent

# batch rules: n // 32 between 16 and 200 (about 29 steps an epoch below 6,400 rows, 200 above)
B32 = "max(16, min(200, n // 32))"
B16 = "max(8, min(200, n // 16))"
B64 = "max(32, min(256, n // 64))"


def epochs_for(batch, steps, hi):
    """Epochs for `steps` optimiser steps at this batch on 90 % of n (the validation split), 20..hi."""
    return f"{{min({hi}, max(20, -(-{steps} * {batch} // int(0.9 * n))))}}"


# A candidate whose flags start with "transform=robust-clip " (or quantile) is a diagnostic: the numeric
# columns are rewritten before downhill reads them (tables.py --transform), standing for engine code
# that does not exist yet.
# "S", the step rule: batch n/32 in 16..200 and epochs for 10,000 steps, 20..1000
STEPS = f"--batch-size {{{B32}}} --epochs {epochs_for(B32, 10000, 1000)}"

CANDIDATES = [
    ("defaults", ""),
    ("batch n/32", f"--batch-size {{{B32}}}"),
    ("batch n/16", f"--batch-size {{{B16}}}"),
    ("batch n/64", f"--batch-size {{{B64}}}"),
    ("batch n/32, 10k steps ≤ 1000 ep", f"--batch-size {{{B32}}} --epochs {epochs_for(B32, 10000, 1000)}"),
    ("batch n/32, 20k steps ≤ 2000 ep", f"--batch-size {{{B32}}} --epochs {epochs_for(B32, 20000, 2000)}"),
    ("batch 200, 10k steps ≤ 2000 ep", f"--epochs {epochs_for('200', 10000, 2000)}"),
    ("batch n/32, 256×2", f"--batch-size {{{B32}}} --hidden 256,256"),
    ("batch n/32, 256×3", f"--batch-size {{{B32}}} --hidden 256,256,256"),
    ("batch n/32, 256×3, dropout 0.15", f"--batch-size {{{B32}}} --hidden 256,256,256 --dropout 0.15"),
    ("batch n/32, lr 3e-3", f"--batch-size {{{B32}}} --lr 0.003"),
    ("batch n/32, lr 3e-3, cosine", f"--batch-size {{{B32}}} --lr 0.003 --schedule cosine"),
    ("batch n/32, AdamW wd 0.02", f"--batch-size {{{B32}}} --optimizer adamw --weight-decay 0.02"),
    ("val 0.2", "--val-fraction 0.2"),
    ("gelu", "--activation gelu"),
    ("dropout 0.1", "--dropout 0.1"),
    ("256", "--hidden 256"),
    ("512", "--hidden 512"),
    ("256, dropout 0.15", "--hidden 256 --dropout 0.15"),
    ("512, dropout 0.25", "--hidden 512 --dropout 0.25"),
    ("lr 3e-3", "--lr 0.003"),
    ("lr 3e-4, 20k steps ≤ 2000 ep", f"--lr 0.0003 --epochs {epochs_for('200', 20000, 2000)}"),
    ("l2 1e-4", "--l2 0.0001"),
    ("batch n/32, 10k steps ≤ 1000 ep, val 0.2", f"--batch-size {{{B32}}} --epochs {epochs_for(B32, 10000, 1000)} --val-fraction 0.2"),
    ("batch n/32, 10k steps ≤ 1000 ep, 256, dropout 0.15", f"{STEPS} --hidden 256 --dropout 0.15"),
    ("S, 512, dropout 0.25", f"{STEPS} --hidden 512 --dropout 0.25"),
    ("S, 256, dropout 0.15, gelu", f"{STEPS} --hidden 256 --dropout 0.15 --activation gelu"),
    ("S, 256×2, dropout 0.15", f"{STEPS} --hidden 256,256 --dropout 0.15"),
    ("S, 256, dropout 0.15, l2 1e-4", f"{STEPS} --hidden 256 --dropout 0.15 --l2 0.0001"),
    ("S, 256, dropout 0.15, lr 2e-3", f"{STEPS} --hidden 256 --dropout 0.15 --lr 0.002"),
    ("S, RealMLP-like: 256×3, dropout 0.15, AdamW 0.02, cosine, gelu", f"{STEPS} --hidden 256,256,256 --dropout 0.15 --optimizer adamw --weight-decay 0.02 --schedule cosine --activation gelu"),
    ("S, 256, dropout 0.15 + robust scale & smooth clip (diagnostic)", f"transform=robust-clip {STEPS} --hidden 256 --dropout 0.15"),
    ("S, 256, dropout 0.15 + quantile transform (diagnostic)", f"transform=quantile {STEPS} --hidden 256 --dropout 0.15"),
]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default="tuning")
    p.add_argument("--only", default=None)
    p.add_argument("--labels", default=None, help="run only these candidates (comma-separated labels, or indices)")
    p.add_argument("--downhill", default=str(here.parent / "target/release/downhill"))
    p.add_argument("--out", default="/tmp/tables-sweep")
    p.add_argument("--cached-refs-only", action="store_true")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = CANDIDATES
    if a.labels:
        want = a.labels.split(",")
        chosen = [c for i, c in enumerate(CANDIDATES) if c[0] in want or str(i) in want]
    rows = []
    for label, flags in chosen:
        j = out / f"{a.set}-{label.replace('/', '_').replace(' ', '_')}.json"
        transform = "none"
        if flags.startswith("transform="):
            transform, flags = flags.split(" ", 1) if " " in flags else (flags, "")
            transform = transform.split("=", 1)[1]
        cmd = [sys.executable, str(here / "tables.py"), "--set", a.set, "--downhill", a.downhill, "--flags", flags, "--label", label, "--json", str(j), "--transform", transform]
        if a.only:
            cmd += ["--only", a.only]
        if a.cached_refs_only:
            cmd.append("--cached-refs-only")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{label}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
            continue
        s = json.loads(j.read_text())
        part = s["summary"]["held_out" if a.set == "held_out" else "tuning"]
        rows.append((label, flags, part))
        print(f"done: {label}", file=sys.stderr, flush=True)
    print("| candidate (flags over the defaults) | worst Δ RealMLP | met ≥ −0.005 | worst Δ LightGBM | met ≥ −0.01 | worst Δ sklearn | met ≥ 0 | mean Δ RealMLP / LightGBM / sklearn |")
    print("|---|---|---|---|---|---|---|---|")
    for label, flags, part in rows:
        cells = [label]
        means = []
        for ref in ("realmlp", "lightgbm", "sklearn"):
            x = part.get(ref)
            if x is None:
                cells += ["—", "—"]
                means.append("—")
                continue
            cells += [f"{x['worst']:+.3f} ({x['table']})".replace("-", "−"), f"{x['met']}/{x['of']}"]
            means.append(f"{x['mean']:+.3f}".replace("-", "−"))
        cells.append(" / ".join(means))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
