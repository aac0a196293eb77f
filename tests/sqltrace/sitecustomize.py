"""Records every SQL statement a daemon runs, for the test of the store's query plans; never
installed outside it.

A test puts this folder first on the ``PYTHONPATH`` of the daemon it starts and names a file
in ``HPCFLOW_TEST_SQL_TRACE``; each connection the daemon opens then appends the statements
it runs to that file, one per line (newlines folded)."""

import os
import sqlite3

_TRACE = os.environ.get("HPCFLOW_TEST_SQL_TRACE")

if _TRACE:
    _connect = sqlite3.connect

    def _traced_connect(*args, **kwargs):
        conn = _connect(*args, **kwargs)

        def record(statement: str) -> None:
            with open(_TRACE, "a") as f:
                f.write(" ".join(statement.split()) + "\n")

        conn.set_trace_callback(record)
        return conn

    sqlite3.connect = _traced_connect
