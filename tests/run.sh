#!/usr/bin/env bash
# Sets up a virtual environment with hpcflow and its dev extras, starts the test services
# (tests/services/up.sh: Slurm + sshd, needs root), then runs every check:
# ruff, mypy and the whole pytest suite. Usage: bash tests/run.sh [pytest args]
# Env: HPCFLOW_SERVICES_STATE (state dir, default /tmp/hpcflow-services/state),
#      HPCFLOW_KEEP_SERVICES=1 (leave the services running after the run).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HPCFLOW_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'

# Real services for tests/integration: a one-node Slurm cluster and an sshd on 127.0.0.1:2222
# (see tests/services/). They are stopped when this script exits, unless HPCFLOW_KEEP_SERVICES=1.
STATE="${HPCFLOW_SERVICES_STATE:-/tmp/hpcflow-services/state}"
if [ "${HPCFLOW_KEEP_SERVICES:-0}" != 1 ]; then
  # set before up.sh, so that a half-started set of services is stopped too
  trap 'bash tests/services/down.sh "$STATE" >&2' EXIT
fi
bash tests/services/up.sh "$STATE"
# shellcheck source=/dev/null
source "$STATE/services.env"

"$VENV/bin/python" -m ruff check hpcflow daemon connectors tests examples benchmarks
bash tests/mypy.sh "$VENV/bin/python"
# not `exec`: the EXIT trap must still run; pytest's exit code is the script's exit code
rc=0
"$VENV/bin/python" -m pytest "$@" || rc=$?
exit "$rc"
