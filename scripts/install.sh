#!/usr/bin/env bash
# Create .venv and install bremen-robot with all extras. Safe to re-run.
# torch is installed first, pinned, so the local CPU build is taken instead of
# the registry's multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
"$PY" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), "bremen-robot needs Python 3.10-3.12 (ROS 2 kilted wheels)"'
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
STAMP=.venv/.bremen-installed
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
# Headless MuJoCo rendering needs libEGL (GPU or Mesa) or OSMesa.
if ! ldconfig -p 2>/dev/null | grep -qE 'libEGL\.so|libOSMesa\.so'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq libosmesa6 >/dev/null || echo "note: could not install libosmesa6; GIF rendering will be skipped"
  else
    echo "note: for MuJoCo rendering without a display: apt-get install libosmesa6"
  fi
fi
# Browser tests (review page, operator console) drive Debian's Chromium: pip packages cannot
# download a browser on this network, so the system's chromium + chromedriver are used.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null; }) \
      || echo "note: could not install chromium; the browser tests will fail in CI and skip elsewhere"
  else
    echo "note: for the browser tests: apt-get install chromium chromium-driver"
  fi
fi
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[sim,ros,dev,cluster]"
touch "$STAMP"
