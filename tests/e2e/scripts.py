"""Pieces of workflow scripts and probes the CLI tests share.

``WAIT_FOR_GO`` is the head of a script whose step ``wait_for(go)`` runs until the file
``go`` exists: a test holds a workflow Running for as long as it needs, then lets it end,
without sleeping for a guessed time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

WAIT_FOR_GO = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_for(go: str) -> {"y": int}:
    while not Path(go).exists():
        time.sleep(0.2)
    return {"y": 1}
'''


def workflow_phase(home: Path, cwd: Path, wf_id: str) -> str:
    """The workflow's phase as ``hpcflow status --json`` gives it."""
    return str(json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout)["phase"])
