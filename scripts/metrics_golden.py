#!/usr/bin/env python3
"""Golden values for tests/suite/training/metrics.rs: scikit-learn's roc_auc_score and f1_score(average='macro').

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-golden.txt
    .venv/bin/python scripts/metrics_golden.py
"""
import sklearn
from sklearn.metrics import f1_score, roc_auc_score

# Two classes, scores with ties (within and across classes).
Y = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0]
S = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, -1.0, 2.0, 0.1, 0.1, 0.7, 0.35]
# Four classes, class 3 never true nor predicted.
T = [0, 1, 2, 2, 1, 0, 2, 1, 0, 0]
P = [0, 2, 2, 1, 1, 0, 2, 2, 1, 0]

if __name__ == "__main__":
    print(f"scikit-learn {sklearn.__version__}")
    print("roc_auc", repr(roc_auc_score(Y, S)))
    print("binary macro-F1 of (score > 0.3)", repr(f1_score(Y, [int(s > 0.3) for s in S], average="macro")))
    print("4-class macro-F1", repr(f1_score(T, P, average="macro", zero_division=0)))
    print("4-class per-class F1 (labels 0..3)", repr(list(f1_score(T, P, average=None, labels=[0, 1, 2, 3], zero_division=0))))
    from sklearn.utils.class_weight import compute_class_weight
    import numpy as np
    LAB = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    print("balanced class weights", repr(list(compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=np.array(LAB)))))
