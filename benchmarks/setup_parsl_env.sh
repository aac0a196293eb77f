#!/usr/bin/env bash
# Creates the scaling benchmark's own environment with Parsl (never installed into hpcflow's).
# Parsl's HighThroughputExecutor is the non-durable upper bound of benchmarks/scaling.py.
set -euo pipefail
VENV="${PARSL_VENV:-/tmp/hpcflow-bench/venv-parsl}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "parsl${PARSL_VERSION:+==$PARSL_VERSION}"
"$VENV/bin/python" -m pip show parsl | grep -E '^(Name|Version)'
# HTEX starts its workers through this console script: it must be on the venv's PATH.
test -x "$VENV/bin/process_worker_pool.py" || \
  echo "warning: $VENV/bin/process_worker_pool.py missing: HighThroughputExecutor cannot start workers" >&2
