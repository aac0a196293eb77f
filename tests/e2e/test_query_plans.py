"""The engine's per-event queries are covered by indexes: every statement a daemon runs
while it plans, submits, polls and finishes a workflow (recorded through the hook in
tests/sqltrace) is checked with ``EXPLAIN QUERY PLAN`` against the store it left, and none
scans a table that grows with history (steps, jobs, events, workflows, requests, values)."""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, run_cli

WORKFLOW = '''
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def plus(x: int) -> {"y": int}:
    return {"y": x + 1}

wf = Workflow("plans")
first = Step("first", PythonOPTemplate(plus), parameters={"x": 0})
wf.add(first)
wf.add(Step("fan", PythonOPTemplate(plus), parameters={"x": "{{item}}"},
            with_param=argo_range(5)))
wf.add(Step("last", PythonOPTemplate(plus), parameters={"x": first.outputs.parameters["y"]}))
wf.submit()
wf.wait()
print(wf.query_status())
'''

#: Tables whose size grows with the work done: a full scan of one is a cost per event that
#: grows with history.
GROWING = ("steps", "jobs", "events", "workflows", "requests", "values", "blobs")


def _statements(trace: Path) -> set[str]:
    """The distinct reads and writes of rows, with their literals as they ran."""
    found = set()
    for line in trace.read_text().splitlines():
        head = line.split(" ", 1)[0].upper()
        if head in ("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"):
            found.add(line)
    return found


def test_no_per_event_query_scans_a_growing_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    trace = tmp_path / "sql.txt"
    script = tmp_path / "wf.py"
    script.write_text(WORKFLOW)
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_TEST_SQL_TRACE=str(trace),
               PYTHONPATH=os.pathsep.join([str(REPO / "tests" / "sqltrace"), str(REPO)]))
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "run", str(script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    try:
        assert done.returncode == 0 and "Succeeded" in done.stdout, done.stdout + done.stderr
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
    statements = _statements(trace)
    # the hook saw the daemon's own work, not only the client's
    assert any(s.startswith("UPDATE jobs SET state='finished'") for s in statements)
    with sqlite3.connect(home / "store.db") as db:
        scans = {s: full for s in sorted(statements) if (full := _full_scans(db, s))}
        # the check itself has teeth: a lookup by an unindexed column is a full scan
        assert _full_scans(db, "SELECT * FROM events WHERE detail='x'")
    assert not scans, "\n".join(f"{s}\n  -> {p}" for s, p in scans.items())


def _full_scans(db: sqlite3.Connection, statement: str) -> list[str]:
    try:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement)]
    except sqlite3.Error:
        return []  # a statement about a temporary object
    return [p for p in plan if re.match(rf"SCAN ({'|'.join(GROWING)})\b", p)]
