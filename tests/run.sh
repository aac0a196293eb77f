#!/usr/bin/env bash
# Sets up a virtual environment with hpcflow and its dev extras, starts the test services
# (tests/services/up.sh: Slurm + sshd, needs root), then runs every check:
# ruff, mypy and the whole pytest suite. Usage: bash tests/run.sh [pytest args]
# Env: HPCFLOW_SERVICES_STATE (state dir, default /tmp/hpcflow-services/state),
#      HPCFLOW_KEEP_SERVICES=1 (leave the services running after the run),
#      HPCFLOW_CPU_HOGS=N (run N busy loops beside the suite: the tests must pass on a loaded
#      machine, since they wait on conditions, never on sleeps sized for an idle one).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HPCFLOW_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'
# Graphviz's dot: `hpcflow graph -o png` draws with it, and the graph tests read DOT back with it
if ! command -v dot >/dev/null; then
  # shellcheck source=services/lib.sh
  ( source tests/services/lib.sh && apt_install graphviz )
fi

# Real services for tests/integration: a one-node Slurm cluster and an sshd on 127.0.0.1:2222
# (see tests/services/). They are stopped when this script exits, unless HPCFLOW_KEEP_SERVICES=1.
STATE="${HPCFLOW_SERVICES_STATE:-/tmp/hpcflow-services/state}"
HOG_PIDS=()
at_exit() {
  if [ "${#HOG_PIDS[@]}" -gt 0 ]; then
    kill "${HOG_PIDS[@]}" 2>/dev/null || true
  fi
  if [ "${HPCFLOW_KEEP_SERVICES:-0}" != 1 ]; then
    bash tests/services/down.sh "$STATE" >&2
  fi
}
# set before up.sh, so that a half-started set of services is stopped too
trap at_exit EXIT
bash tests/services/up.sh "$STATE"
# shellcheck source=/dev/null
source "$STATE/services.env"

"$VENV/bin/python" -m ruff check hpcflow daemon connectors tests examples benchmarks
bash tests/mypy.sh "$VENV/bin/python"
for _ in $(seq 1 "${HPCFLOW_CPU_HOGS:-0}"); do
  ( while :; do :; done ) &
  HOG_PIDS+=("$!")
done
if [ "${#HOG_PIDS[@]}" -gt 0 ]; then
  echo "tests/run.sh: ${#HOG_PIDS[@]} CPU hog(s) running beside the suite: ${HOG_PIDS[*]}" >&2
fi
# not `exec`: the EXIT trap must still run; pytest's exit code is the script's exit code
rc=0
"$VENV/bin/python" -m pytest "$@" || rc=$?
exit "$rc"
