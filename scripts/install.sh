#!/usr/bin/env bash
# Creates (or reuses) .venv and installs what the toolkit and its tests need on a fresh Python 3.11 machine
# (runtime: requirements.txt, tests and lint: requirements-dev.txt; benchmarks add requirements-bench.txt via make bench).
# Order matters: torch first, then yolox 0.3.0 without build isolation (its setup.py imports torch and pins an
# onnx-simplifier that has no wheel for 3.11), then the runtime needs, then this project in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
# pip itself is left as the venv made it: pip >= 26.2 ignores the machine's torch cap inside build environments
$PIP install setuptools wheel
$PIP install "torch==2.14.1" "torchvision==0.29.1" "numpy<2"
if ! $VENV/bin/python -c "import yolox" 2>/dev/null; then
    $PIP install --no-build-isolation --no-deps "yolox==0.3.0"
fi
$PIP install -r requirements.txt -r requirements-dev.txt
# TrackEval (the HOTA reference in tests) asks for numpy>=2.3 in its metadata but runs on numpy 1.26
$PIP install --no-deps "trackeval==1.3.0"
$PIP install --no-build-isolation --no-deps -e .
$VENV/bin/python -c "import torch, torchvision, yolox, nuscenes, motmetrics, cv2, lap; print('[install] ok: torch', torch.__version__, 'yolox', yolox.__version__)"
