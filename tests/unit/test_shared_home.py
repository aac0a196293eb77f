"""The pieces of a home shared between login nodes: the file system's kind, the leader
lease (expiry judged by what this host saw, never by another host's clock), the store's
fencing token, the inbox, and the line a failed read on a non-leader host gets."""

import os
import sqlite3
import time

import pytest

from hpcflow.cli.failure import explain
from hpcflow.daemon import inbox
from hpcflow.daemon.fs_kind import home_file_system, read_mounts
from hpcflow.daemon.leader import (
    FencedError,
    LeaderLease,
    NotLeaderError,
    current_lease,
)
from hpcflow.daemon.store import Store


def test_the_mount_of_a_path_and_its_kind(tmp_path, monkeypatch) -> None:
    mounts = read_mounts()
    assert any(point == "/" for point, _ in mounts)
    assert not home_file_system(tmp_path).shared or home_file_system(tmp_path).fs_type
    monkeypatch.setenv("HPCFLOW_FS_TYPE", "nfs4")
    assert home_file_system(tmp_path).shared


def test_a_lease_is_taken_over_only_after_this_host_saw_no_beat_for_its_ttl(tmp_path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    login1 = LeaderLease(home, ttl=30, host="login1")
    login2 = LeaderLease(home, ttl=30, host="login2")
    assert login1.acquire().epoch == 1
    with pytest.raises(NotLeaderError, match="host login1"):
        login2.acquire()  # first sight of this beat
    lease = current_lease(home / "leader")
    assert lease is not None
    assert not login2.expired(lease, now=time.time() + 10)
    login1.beat()  # a beat resets what login2 saw
    lease = current_lease(home / "leader")
    assert lease is not None and not login2.expired(lease, now=time.time() + 31)
    assert login2.expired(lease, now=time.time() + 62)
    # what login2 saw is kept in a file: a once-a-minute tick judges as a daemon would
    assert (home / "leader" / "seen-login2.json").exists()
    # the old leader is fenced once another epoch exists
    (home / "leader" / "epoch-2").write_text(
        '{"epoch": 2, "host": "login2", "pid": 1, "beat": 0, "at": 0}')
    with pytest.raises(FencedError, match="taken over by host login2"):
        login1.beat()


def test_a_released_lease_is_taken_at_once(tmp_path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    first = LeaderLease(home, ttl=300, host="login1")
    first.acquire()
    first.release()
    assert LeaderLease(home, ttl=300, host="login2").acquire().epoch == 2


def test_the_store_refuses_writes_of_an_engine_whose_epoch_is_old(tmp_path) -> None:
    home = tmp_path / "h"
    old, new = Store.open(home), Store.open(home)
    old.claim_leadership(1)
    new.claim_leadership(2)
    with pytest.raises(FencedError, match="belongs to epoch 2"), old.write() as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
    assert new.conn.execute("SELECT value FROM meta WHERE key='x'").fetchone() is None
    with pytest.raises(FencedError, match="epoch 2"):
        old.claim_leadership(1)
    old.close()
    new.close()


def test_clients_on_another_host_go_through_the_inbox(tmp_path, monkeypatch) -> None:
    home = tmp_path / "h"
    home.mkdir()
    assert inbox.writes_directly(home, shared=False)
    assert not inbox.writes_directly(home, shared=True)  # no leader yet: the inbox
    LeaderLease(home, host="somewhere-else").acquire()
    assert not inbox.writes_directly(home, shared=True)
    message = inbox.workflow_message("wf-1", "wf", {"a": 1}, {"d": b"\x00\x01"}, {}, {}, False)
    inbox.deliver(home, message)
    [(left_at, waiting)] = inbox.waiting_workflows(home)
    assert waiting["name"] == "wf" and abs(left_at - time.time()) < 600
    [(path, taken)] = inbox.waiting(home)
    assert inbox.blobs_of(taken) == {"d": b"\x00\x01"} and path.parent.name == "inbox"


def test_a_failed_read_while_another_host_writes_is_not_called_damage(tmp_path,
                                                                       monkeypatch) -> None:
    home = tmp_path / "h"
    home.mkdir()
    error = sqlite3.DatabaseError("database disk image is malformed")
    assert "is damaged" in explain(error, home / "store.db")
    monkeypatch.setenv("HPCFLOW_FS_TYPE", "nfs4")
    LeaderLease(home, host="login9").acquire()
    line = explain(error, home / "store.db")
    assert "host login9" in line and "run the command again" in line, line
    assert "damaged" not in line


def test_local_steps_of_another_host_are_judged_by_their_claims_beat(tmp_path) -> None:
    from hpcflow.connectors.executors.local import foreign_claim

    step = tmp_path / "s"
    step.mkdir()
    assert foreign_claim(step) is None
    (step / "claim").write_text("4242 login7")
    host, idle = foreign_claim(step) or ("", -1.0)
    assert host == "login7" and 0 <= idle < 60
    old = time.time() - 3600
    os.utime(step / "claim", (old, old))
    assert (foreign_claim(step) or ("", 0.0))[1] > 3000
    (step / "claim").write_text(f"4242 {os.uname().nodename}")
    assert foreign_claim(step) is None  # this host's: its lock tells



def test_gc_on_a_host_that_does_not_lead_a_shared_home_is_refused(tmp_path,
                                                                   monkeypatch) -> None:
    from hpcflow.daemon import client
    from hpcflow.daemon.prune import prune_workflows
    from hpcflow.errors import HpcflowError

    home = tmp_path / "h"
    monkeypatch.setenv("HPCFLOW_FS_TYPE", "nfs4")
    store = client.store_for(home)
    try:
        LeaderLease(home, host="login9").acquire()
        with pytest.raises(HpcflowError, match="only the leader host"):
            prune_workflows(home, [{"id": "wf-abcde"}])
    finally:
        client._stores.pop(home, None)
        store.close()


def test_restore_is_refused_while_another_host_leads(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from hpcflow.cli.main import main

    home = tmp_path / "h"
    Store.open(home).close()
    LeaderLease(home, host="login9").acquire()
    monkeypatch.setenv("HPCFLOW_HOME", str(home))
    done = CliRunner().invoke(main, ["store", "restore"])
    assert done.exit_code != 0 and "host login9" in done.output, done.output


def test_an_engine_of_an_older_hpcflow_is_seen_and_never_doubled(tmp_path) -> None:
    """Before the per-host locks, engines held ``engine.lock``: one still running after an
    upgrade keeps new engines from starting beside it."""
    import fcntl

    from hpcflow.daemon.engine import engine_pid, try_lock

    home = tmp_path / "h"
    home.mkdir()
    fd = os.open(home / "engine.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4321")
        assert try_lock(home) is None and engine_pid(home) == 4321
    finally:
        os.close(fd)
    lock = try_lock(home)
    assert lock is not None and engine_pid(home) == os.getpid()
    os.close(lock)
