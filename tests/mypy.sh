#!/usr/bin/env bash
# mypy over the package as installed: hpcflow/ with daemon/ and connectors/ mapped in as
# hpcflow.daemon and hpcflow.connectors (a symlink tree under build/), so that imports
# between the three folders are type-checked instead of resolving to Any.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
tree=build/mypy-tree
rm -rf "$tree" && mkdir -p "$tree/hpcflow"
for entry in hpcflow/*; do ln -s "$PWD/$entry" "$tree/hpcflow/$(basename "$entry")"; done
ln -s "$PWD/daemon" "$tree/hpcflow/daemon"
ln -s "$PWD/connectors" "$tree/hpcflow/connectors"
cd "$tree" && "$OLDPWD/$PY" -m mypy --config-file "$OLDPWD/pyproject.toml" -p hpcflow
