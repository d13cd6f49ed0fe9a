#!/usr/bin/env bash
# Create benchmarks/.venv-d3rlpy with d3rlpy for the model-free baseline (TD3+BC). Safe to re-run.
#
# d3rlpy pins gymnasium==1.0.0 while the project uses a newer gymnasium, so d3rlpy lives in its
# own venv and never in the project's .venv. Only benchmarks/td3bc_step.py runs inside it; it
# reads a dataset .npz and writes actor weights as .npz (no project import needed there).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
VENV=.venv-d3rlpy
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP=$VENV/.installed
if [ -f "$STAMP" ]; then
  exit 0
fi
# torch first and pinned, so the local CPU build is taken instead of the registry's CUDA build
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet "d3rlpy==${D3RLPY_VERSION:-2.8.1}"
"$VENV/bin/python" -c 'import d3rlpy, torch; print("d3rlpy", d3rlpy.__version__, "torch", torch.__version__)'
touch "$STAMP"
