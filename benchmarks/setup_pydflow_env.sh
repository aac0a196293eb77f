#!/usr/bin/env bash
# Creates the benchmark's own environment with pydflow (never installed into hpcflow's).
set -euo pipefail
VENV="${BENCH_VENV:-/tmp/hpcflow-bench/venv-pydflow}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "pydflow==${PYDFLOW_VERSION:-1.8.134}"
"$VENV/bin/python" -m pip show pydflow | grep -E '^(Name|Version)'
