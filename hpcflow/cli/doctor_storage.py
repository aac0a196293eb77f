"""The home and the artifact storage, for ``hpcflow doctor``.

The home: its file system, the store's journal there and who leads it. The artifact
storage: reachable, writable and, for S3, the clock. (The store itself is checked by
:func:`hpcflow.cli.store_cmds.check_store`.)
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hpcflow.cli.doctor_probe import Failed

#: Clock skew beyond this is a warning; S3 itself refuses requests signed 15 minutes off.
CLOCK_SKEW_WARN = 60.0
CLOCK_SKEW_FAIL = 600.0


def check_storage(storage: Any) -> list[str]:
    """The storage's checks that passed: reachable (the bucket), writable (an object in,
    back and out again) and, for S3, the clock against the server's."""
    from hpcflow.errors import HpcflowError

    passed: list[str] = []
    check_bucket = getattr(storage, "check_bucket", None)
    try:
        if check_bucket is not None:
            check_bucket()
            passed.append(f"{storage!r} reachable")
        probe_key = f".hpcflow/doctor/{uuid.uuid4().hex}"
        import tempfile

        with tempfile.TemporaryDirectory(prefix="hpcflow-doctor-") as tmp:
            sent = Path(tmp) / "sent"
            sent.write_bytes(uuid.uuid4().bytes * 64)
            storage.upload(probe_key, str(sent))
            storage.download(probe_key, str(Path(tmp) / "back"))
            if (Path(tmp) / "back").read_bytes() != sent.read_bytes():
                raise Failed(f"{storage!r} gave back other bytes than were written")
            storage.delete_prefix(probe_key)
        passed.append("writable (an object written, read back and deleted)")
        skew_of = getattr(storage, "clock_skew", None)
        if skew_of is not None:
            skew = skew_of()
            if abs(skew) > CLOCK_SKEW_FAIL:
                raise Failed(f"this machine's clock is {skew:+.0f} s off the S3 server's: "
                             "synchronise it (chrony, ntpd); S3 refuses requests signed "
                             "15 minutes off")
            note = " (warning: synchronise it)" if abs(skew) > CLOCK_SKEW_WARN else ""
            passed.append(f"clock within {abs(skew):.0f} s of the server's{note}")
    except HpcflowError as exc:
        raise Failed(str(exc)) from None
    except OSError as exc:
        raise Failed(f"{storage!r}: {exc}") from None
    return passed


def check_home(home: Path, ttl: float) -> list[str]:
    """The home's file system, the store's journal there, and who leads it (a home shared
    between login nodes is safe with the rollback journal and one live leader)."""
    import sqlite3
    import time

    from hpcflow.daemon.fs_kind import home_file_system
    from hpcflow.daemon.leader import LEADER_DIR, current_lease, this_host
    from hpcflow.daemon.store import STORE_FILE

    fs = home_file_system(home)
    lines = [f"file system: {fs.describe()}"]
    if (home / STORE_FILE).exists():
        conn = sqlite3.connect(f"file:{home / STORE_FILE}?mode=ro", uri=True, timeout=10)
        try:
            journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        finally:
            conn.close()
        if fs.shared and journal == "wal":
            raise Failed(f"the store is in WAL mode on {fs.fs_type}, which hosts share: WAL "
                         "is not safe there; stop every hpcflow engine and start one again "
                         "(it switches the store to the rollback journal)")
        lines.append(f"store journal: {journal}")
    lease = current_lease(home / LEADER_DIR)
    if lease is None:
        lines.append("leader: none yet (the first engine to start leads)")
    elif lease.released:
        lines.append(f"leader: none ({lease.describe()} stopped cleanly)")
    else:
        lines.append(f"leader: {lease.describe()}, last beat {time.time() - lease.at:.0f} s "
                     f"ago by its clock; another host takes over {ttl:.0f} s after its last "
                     f"beat; this host is {this_host()}")
    lines.append("safe: " + ("one leader host writes the store; other hosts send their "
                             "submissions and requests through inbox/" if fs.shared else
                             "this home is on a local file system"))
    return lines
