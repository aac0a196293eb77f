import os
import stat

import pytest

from hpcflow.daemon.store import SCHEMA_VERSION, Store
from hpcflow.errors import StoreError


def test_new_store_is_private_wal_and_versioned(tmp_path):
    home = tmp_path / "h"
    store = Store.open(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "store.db").stat().st_mode) == 0o600
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == SCHEMA_VERSION
    assert store.integrity_ok()
    store.close()
    Store.open(home).close()  # reopening migrates nothing and works


def test_store_writable_by_others_is_refused(tmp_path, capsys):
    home = tmp_path / "h"
    Store.open(home).close()
    os.chmod(home / "store.db", 0o666)
    with pytest.raises(StoreError, match=r"writable by other users.*chmod 600"):
        Store.open(home)
    os.chmod(home / "store.db", 0o600)
    # a home of the user's own that others could enter is tightened, and said so
    os.chmod(home, 0o777)
    Store.open(home).close()
    assert os.stat(home).st_mode & 0o777 == 0o700
    assert "had mode 0777; made it 0700" in capsys.readouterr().err


def test_newer_schema_is_refused(tmp_path):
    home = tmp_path / "h"
    store = Store.open(home)
    with store.write() as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    store.close()
    with pytest.raises(StoreError, match="upgrade hpcflow"):
        Store.open(home)


def test_transition_and_event_commit_together(tmp_path):
    store = Store.open(tmp_path / "h")
    store.insert_workflow("w-1", "w", {"name": "w"}, {}, {}, {})
    with store.write() as conn:
        sid = store.insert_step(conn, "w-1", 0, "root", "w", "t", "Pod", "Pending",
                                {"parameters": {}, "artifacts": {}}, None)
    assert sid is not None
    with pytest.raises(RuntimeError), store.write() as conn:
        store.set_step_phase(conn, sid, "Pending", "Running", workflow_id="w-1")
        raise RuntimeError("crash inside the transaction")
    assert store.step(sid)["phase"] == "Pending"
    events = store.conn.execute("SELECT count(*) FROM events WHERE step_id=?", (sid,)).fetchone()
    assert events[0] == 1  # only the creation event: the rolled-back one is gone
    with store.write() as conn:
        assert store.set_step_phase(conn, sid, "Pending", "Running", workflow_id="w-1")
        assert not store.set_step_phase(conn, sid, "Pending", "Running", workflow_id="w-1")
    kinds = [r[0] for r in store.conn.execute(
        "SELECT to_phase FROM events WHERE step_id=? ORDER BY id", (sid,))]
    assert kinds == ["Pending", "Running"]


def test_a_job_change_outside_the_transition_table_changes_nothing(tmp_path):
    """The store checks ``JobState``'s table in the statement that changes the job: a
    finished job is never seen running again, and its record stays as it was."""
    from hpcflow.connectors.executors.base import InvalidJobTransition, JobState

    store = Store.open(tmp_path / "h")
    with store.write() as conn:
        job = store.insert_job_intent(conn, 1, "wf", "local", "hpcflow-wf-1-0", "/d")
        store.set_job_submitted(conn, job, "123", timeout=60)
        store.set_job_state(conn, job, JobState.QUEUED)
        store.set_job_state(conn, job, JobState.RUNNING)
        store.set_job_finished(conn, job, JobState.FINISHED, 0, None)
    with pytest.raises(InvalidJobTransition, match="from finished to running"), \
            store.write() as conn:
        store.set_job_state(conn, job, JobState.RUNNING)
    with pytest.raises(InvalidJobTransition, match="from finished to lost"), \
            store.write() as conn:
        store.set_job_finished(conn, job, JobState.LOST, None, "gone")
    row = store.job(job)
    assert (row["state"], row["native_id"], row["exit_code"], row["detail"]) == (
        "finished", "123", 0, None)
    store.close()


def _add_step(store, conn, slot):
    return store.insert_step(conn, "w-1", 0, slot, slot, "t", "Pod", "Pending",
                             {"parameters": {}, "artifacts": {}}, None)


def test_a_removed_steps_id_is_never_given_again(tmp_path):
    """Job names, events and step directories name steps by id: a step removed to be planned
    anew (retry, restart) must not hand its id, and its old directory, to the next one."""
    store = Store.open(tmp_path / "h")
    store.insert_workflow("w-1", "w", {"name": "w"}, {}, {}, {})
    with store.write() as conn:
        ids = [_add_step(store, conn, f"0.s{i}") for i in range(3)]
        store.remove_step(conn, ids[-1], "w-1", "removed")
        assert _add_step(store, conn, "0.again") == ids[-1] + 1
    store.close()


def test_a_schema_8_store_gets_ids_above_every_id_jobs_and_events_have_seen(tmp_path):
    home = tmp_path / "h"
    store = Store.open(home)
    store.insert_workflow("w-1", "w", {"name": "w"}, {}, {}, {})
    (sql,) = store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE type='table' AND name='steps'").fetchone()
    index_sql = {r[0]: r[1] for r in store.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='steps'")}
    indexes = sorted(index_sql)
    with store.write() as conn:  # the table as version 8 made it: ids may be reused
        conn.execute("DROP TABLE steps")
        conn.execute(sql.replace(" AUTOINCREMENT", ""))
        for text in index_sql.values():
            conn.execute(text)
        conn.execute("UPDATE meta SET value='8' WHERE key='schema_version'")
        kept = [_add_step(store, conn, f"0.s{i}") for i in range(2)]
        gone = _add_step(store, conn, "0.gone")
        store.insert_job_intent(conn, gone, "w-1", "local", "job-of-gone", None, None)
        store.remove_step(conn, gone, "w-1", "removed")
    assert "AUTOINCREMENT" not in store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE name='steps'").fetchone()[0]
    store.close()
    store = Store.open(home)
    assert store.schema_version() == SCHEMA_VERSION
    assert [r[0] for r in store.conn.execute("SELECT id FROM steps ORDER BY id")] == kept
    assert sorted(r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='steps'")) == indexes
    with store.write() as conn:
        assert _add_step(store, conn, "0.new") == gone + 1
    assert store.integrity_ok()
    store.close()


def test_tips_are_kept_once_per_topic_and_go_with_their_workflow(tmp_path):
    home = tmp_path / "h"
    store = Store.open(home)
    with store.write() as conn:  # a store of version 10, before tips had a table
        conn.execute("DROP TABLE tips")
        conn.execute("UPDATE meta SET value='10' WHERE key='schema_version'")
    store.close()
    store = Store.open(home)
    assert store.schema_version() == SCHEMA_VERSION
    for wf in ("w-1", "w-2"):
        store.insert_workflow(wf, "w", {"name": "w"}, {}, {}, {})
    with store.write() as conn:
        assert store.add_tip(conn, "w-1", "preload:fit", "preload numpy")
        assert not store.add_tip(conn, "w-1", "preload:fit", "preload numpy, again")
        assert store.add_tip(conn, "w-1", "preload:plot", "preload matplotlib")
        assert store.add_tip(conn, "w-2", "preload:fit", "preload numpy")
    assert store.tips("w-1") == ["preload numpy", "preload matplotlib"]
    with store.write() as conn:
        store.set_workflow_phase(conn, "w-1", "Running")
        store.set_workflow_phase(conn, "w-1", "Succeeded")
    store.delete_workflow("w-1")
    assert store.tips("w-1") == [] and store.tips("w-2") == ["preload numpy"]
    store.close()
