"""Refused writes (daemon/disk.py): recognised through wrappers, described with the path and
its filesystem, and never fatal to the daemon's status file."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

from hpcflow.daemon.disk import (
    RESERVE_FILE,
    WriteTrouble,
    describe,
    mount_point,
    overwrite_in_place,
    write_error,
    write_status_file,
)
from hpcflow.daemon.process import StatusWriter


def test_a_refused_write_is_found_behind_wrappers_and_sqlite():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("the OP failed") from inner
    except RuntimeError as outer:
        assert write_error(outer) is not None and write_error(outer).errno == errno.ENOSPC
    full = sqlite3.OperationalError("database or disk is full")
    assert write_error(full).errno == errno.ENOSPC
    assert write_error(OSError(errno.EACCES, "Permission denied")).errno == errno.EACCES
    assert write_error(OSError(errno.ENOENT, "No such file")) is None
    assert write_error(ValueError("x")) is None


def test_describe_names_the_path_and_its_filesystem(tmp_path: Path):
    err = OSError(errno.ENOSPC, "No space left on device")
    text = describe(err, tmp_path / "workdir")
    assert text.startswith(f"no space left on device: {tmp_path / 'workdir'} (filesystem ")
    assert f"filesystem {mount_point(tmp_path)}: " in text and " free of " in text
    named = OSError(errno.EACCES, "Permission denied", str(tmp_path / "x.txt"))
    assert describe(named, tmp_path).startswith(f"permission denied: {tmp_path / 'x.txt'} (")


def test_the_status_file_survives_a_write_it_cannot_make(tmp_path: Path):
    """A status file that cannot be replaced (here a directory is in its way: the same path
    as EACCES or EROFS through os.replace) is reported, not raised."""
    home = tmp_path / "home"
    home.mkdir()
    trouble = WriteTrouble(home)
    assert (home / RESERVE_FILE).stat().st_size == 1 << 20
    service = SimpleNamespace(trouble=trouble, last_poll={"local": 1.0}, next_pause=0.0)
    writer = StatusWriter(home)
    writer(service, force=True)
    assert json.loads((home / "daemon.json").read_text())["last_poll"] == {"local": 1.0}
    (home / "daemon.json").unlink()
    (home / "daemon.json").mkdir()
    (home / "daemon.json" / "in-the-way").touch()
    writer(service, force=True)  # no exception
    assert "is a directory" in trouble.report()["problem"]
    (home / "daemon.json" / "in-the-way").unlink()
    (home / "daemon.json").rmdir()
    writer(service, force=True)
    data = json.loads((home / "daemon.json").read_text())
    assert "problem" not in data and trouble.report() == {}


def test_overwrite_in_place_needs_no_new_block(tmp_path: Path):
    path = tmp_path / "status.json"
    write_status_file(path, json.dumps({"a": 1}))
    assert path.stat().st_size == 4096
    overwrite_in_place(path, json.dumps({"a": 2, "problem": "full"}))
    assert json.loads(path.read_text()) == {"a": 2, "problem": "full"}
    assert path.stat().st_size == 4096
