#!/usr/bin/env bash
# Sets up a virtual environment with hpcflow and its dev extras, then runs every check:
# ruff, mypy and the whole pytest suite. Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HPCFLOW_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
"$VENV/bin/python" -m ruff check hpcflow daemon connectors tests examples benchmarks
bash tests/mypy.sh "$VENV/bin/python"
exec "$VENV/bin/python" -m pytest "$@"
