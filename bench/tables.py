#!/usr/bin/env python3
"""The defaults benchmark: downhill with defaults against the scikit-learn pipeline a practitioner
would write, on real tables that ship inside Python packages (nothing is downloaded).

    bench/.venv/bin/python bench/tables.py [--seeds 0,1,2] [--only iris,cars] [--downhill PATH]
                                            [--json results.json] [--flags "--extra downhill flags"]

For every table and seed: a 75/25 train/test split (stratified for classification,
random_state = seed), written as two CSV files (missing values as empty cells). Then

* downhill:     downhill train --data train.csv --test test.csv --target NAME  (defaults only;
                --flags adds flags, for experiments — the published table uses none)
* scikit-learn: ColumnTransformer(numeric: SimpleImputer(median) + StandardScaler;
                text: SimpleImputer(most_frequent) + OneHotEncoder(handle_unknown='ignore'))
                + MLPClassifier(random_state=seed), or for regression
                TransformedTargetRegressor(MLPRegressor(random_state=seed), StandardScaler())
                (scikit-learn's defaults: one hidden layer of 100 ReLU, Adam 1e-3, batch 200,
                up to 200 epochs with a tolerance stop). Rows whose target is missing are dropped
                before splitting, for both.

Reported per table: the median over seeds of test accuracy (classification) or R² (regression),
macro-F1 for classification, and training time (downhill: its epochs' training seconds from
summary.json; scikit-learn: fit() wall time, preprocessing included), plus the difference
downhill − scikit-learn. Tables marked held out were never looked at while choosing downhill's
defaults; they are reported separately.

The tables (the module that bundles each):
    tuning:   iris, breast_cancer, diabetes (sklearn.datasets); randhie (statsmodels, 20,190 rows);
              cars, seattle_weather (vega_datasets; text columns, missing values)
    held out: wine (sklearn.datasets); fair (statsmodels, imbalanced); anes96 (statsmodels)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

root = Path(__file__).resolve().parent.parent


def load(name):
    """(frame, target column, task) for a table, from the package that ships it."""
    if name in ("iris", "wine", "breast_cancer", "diabetes"):
        from sklearn import datasets

        b = getattr(datasets, f"load_{name}")(as_frame=True)
        df = b.frame.copy()
        if name == "diabetes":
            # The unscaled version: raw ages, BMI, ... and the target in 25..346.
            b = datasets.load_diabetes(as_frame=True, scaled=False)
            df = b.frame.copy()
            return df, "target", "regress"
        df["target"] = [b.target_names[t] for t in b.target]
        return df, "target", "classify"
    if name in ("randhie", "fair", "anes96"):
        import statsmodels.api as sm

        df = getattr(sm.datasets, name).load_pandas().data.copy()
        if name == "randhie":
            return df, "mdvis", "regress"
        if name == "fair":
            df["affair"] = np.where(df.pop("affairs") > 0, "yes", "no")
            return df, "affair", "classify"
        if name == "anes96":
            df["vote"] = np.where(df["vote"] > 0, "Dole", "Clinton")
            return df, "vote", "classify"
    if name in ("cars", "seattle_weather"):
        from vega_datasets import data

        if name == "cars":
            df = data.cars().copy()
            df["Year"] = df["Year"].astype(str)
            return df, "Miles_per_Gallon", "regress"
        df = data.seattle_weather().copy()
        df["date"] = df["date"].astype(str)
        return df, "weather", "classify"
    raise SystemExit(f"unknown table {name}")


TUNING = ["iris", "breast_cancer", "diabetes", "randhie", "cars", "seattle_weather"]
HELD_OUT = ["wine", "fair", "anes96"]


def sklearn_fit(train, test, target, task, seed):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import accuracy_score, f1_score, r2_score
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train, y_train = train.drop(columns=[target]), train[target]
    x_test, y_test = test.drop(columns=[target]), test[target]
    numeric = [c for c in x_train.columns if pd.api.types.is_numeric_dtype(x_train[c])]
    text = [c for c in x_train.columns if c not in numeric]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text),
        ]
    )
    if task == "classify":
        model = make_pipeline(pre, MLPClassifier(random_state=seed))
    else:
        model = TransformedTargetRegressor(make_pipeline(pre, MLPRegressor(random_state=seed)), transformer=StandardScaler())
    t0 = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - t0
    p = model.predict(x_test)
    if task == "classify":
        return dict(score=accuracy_score(y_test, p), macro_f1=f1_score(y_test, p, average="macro"), seconds=seconds)
    return dict(score=r2_score(y_test, p), seconds=seconds)


def downhill_fit(binary, train_csv, test_csv, target, task, out, flags):
    cmd = [binary, "train", "--data", str(train_csv), "--test", str(test_csv), "--target", target, "--json", "--quiet", "--out", str(out)] + flags
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return dict(error=r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    s = json.loads(r.stdout)
    t = s["test"]
    res = dict(seconds=sum(s["epoch_seconds"]), wall=wall, epochs=s["epochs"])
    if task == "classify":
        res.update(score=t["accuracy"], macro_f1=t.get("macro_f1"))
    else:
        res.update(score=t["r2"])
    return res


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default=None, help="comma-separated table names")
    p.add_argument("--downhill", default=str(root / "target/release/downhill"))
    p.add_argument("--flags", default="", help="extra downhill flags (experiments only)")
    p.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn (reuse --baseline)")
    p.add_argument("--baseline", default=None, help="JSON of an earlier run whose scikit-learn figures to reuse")
    p.add_argument("--json", default=None, help="write all results here")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    names = TUNING + HELD_OUT
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
    flags = a.flags.split()
    baseline = json.load(open(a.baseline)) if a.baseline else {}
    results = {}
    from sklearn.model_selection import train_test_split

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            df, target, task = load(name)
            df = df[df[target].notna()].reset_index(drop=True)
            rows = []
            for seed in seeds:
                train, test = train_test_split(df, test_size=0.25, random_state=seed, stratify=df[target] if task == "classify" else None)
                tr, te = tmp / f"{name}-{seed}-train.csv", tmp / f"{name}-{seed}-test.csv"
                train.to_csv(tr, index=False)
                test.to_csv(te, index=False)
                d = downhill_fit(a.downhill, tr, te, target, task, tmp / f"run-{name}-{seed}", flags)
                if a.no_sklearn and name in baseline:
                    s = baseline[name]["runs"][seeds.index(seed)]["sklearn"]
                else:
                    s = sklearn_fit(train, test, target, task, seed)
                rows.append(dict(seed=seed, downhill=d, sklearn=s))
                print(f"{name:>16} seed {seed}: downhill {d.get('score', d.get('error'))}  sklearn {s['score']:.4f}", file=sys.stderr)
            dm = median([r["downhill"].get("score") for r in rows])
            sm_ = median([r["sklearn"]["score"] for r in rows])
            results[name] = dict(
                task=task,
                rows=len(df),
                columns=df.shape[1] - 1,
                held_out=name in HELD_OUT,
                downhill=dm,
                sklearn=sm_,
                downhill_f1=median([r["downhill"].get("macro_f1") for r in rows]),
                sklearn_f1=median([r["sklearn"].get("macro_f1") for r in rows]),
                downhill_seconds=median([r["downhill"].get("seconds") for r in rows]),
                downhill_wall=median([r["downhill"].get("wall") for r in rows]),
                sklearn_seconds=median([r["sklearn"]["seconds"] for r in rows]),
                downhill_epochs=median([r["downhill"].get("epochs") for r in rows]),
                errors=[r["downhill"]["error"] for r in rows if "error" in r["downhill"]],
                runs=rows,
            )
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    for title, held in (("Tables used to choose the defaults", False), ("Held-out tables (never used for tuning)", True)):
        print(f"\n{title}\n")
        print("| table | rows × cols | task | downhill | scikit-learn | difference | macro-F1 (downhill / sklearn) | training s (downhill / sklearn) | downhill whole process s | downhill epochs |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            if r["held_out"] != held:
                continue
            metric = "accuracy" if r["task"] == "classify" else "R²"
            if r["downhill"] is None:
                print(f"| {name} | {r['rows']} × {r['columns']} | {metric} | error: {r['errors'][0]} | {r['sklearn']:.3f} | — | — | — | — | — |")
                continue
            diff = r["downhill"] - r["sklearn"]
            ok = diff >= (-0.02 if r["task"] == "classify" else -0.03)
            f1 = f"{r['downhill_f1']:.3f} / {r['sklearn_f1']:.3f}" if r["task"] == "classify" else "—"
            print(
                f"| {name} | {r['rows']} × {r['columns']} | {metric} | {r['downhill']:.3f} | {r['sklearn']:.3f} | "
                f"{diff:+.3f}{'' if ok else ' ✗'} | {f1} | {r['downhill_seconds']:.2f} / {r['sklearn_seconds']:.2f} | "
                f"{r['downhill_wall']:.2f} | {r['downhill_epochs']:.0f} |"
            )


if __name__ == "__main__":
    main()
