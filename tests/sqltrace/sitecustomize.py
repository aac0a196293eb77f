"""Records the SQL a daemon runs, for the tests of the store's query plans and of the
engine's cost per event; never installed outside them.

A test puts this folder first on the ``PYTHONPATH`` of the daemon it starts and names a file
in ``HPCFLOW_TEST_SQL_TRACE``; each connection the daemon opens then appends the statements
it runs to that file, one per line (newlines folded). With ``HPCFLOW_TEST_SQL_WORK`` naming
a file, each process instead counts the SQLite virtual-machine instructions its
connections execute (in hundreds: a measure of rows visited that does not depend on the
machine's speed) and the function calls its main thread makes (Python and C: a measure of
the Python work, as blind to the clock), and appends ``{"argv": ..., "steps_100": N,
"calls": M}`` to the file when it exits."""

import atexit
import json
import os
import sqlite3
import sys

_TRACE = os.environ.get("HPCFLOW_TEST_SQL_TRACE")
_WORK = os.environ.get("HPCFLOW_TEST_SQL_WORK")

if _TRACE or _WORK:
    _connect = sqlite3.connect
    _hundreds = [0]

    def _count() -> int:
        _hundreds[0] += 1
        return 0  # go on

    _calls = [0]

    def _count_call(frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            _calls[0] += 1

    def _report() -> None:
        sys.setprofile(None)
        with open(_WORK, "a") as f:  # type: ignore[arg-type]
            f.write(json.dumps({"argv": sys.argv, "steps_100": _hundreds[0],
                                "calls": _calls[0]}) + "\n")

    if _WORK:
        atexit.register(_report)
        sys.setprofile(_count_call)

    def _traced_connect(*args, **kwargs):
        conn = _connect(*args, **kwargs)

        def record(statement: str) -> None:
            with open(_TRACE, "a") as f:
                f.write(" ".join(statement.split()) + "\n")

        if _TRACE:
            conn.set_trace_callback(record)
        if _WORK:
            conn.set_progress_handler(_count, 100)
        return conn

    sqlite3.connect = _traced_connect
