"""Values stored once by digest: the store's side, the step directory's side, old stores,
and the write-ahead log kept small."""

import hashlib
import json
import os
import sqlite3

import pytest

from hpcflow import values
from hpcflow.cli.main import _io_json
from hpcflow.daemon import value_files
from hpcflow.daemon.backup import WAL_TRUNCATE_AT, StoreKeeper
from hpcflow.daemon.planner import coerce_text
from hpcflow.daemon.store import SCHEMA_VERSION, Store

BIG = "v" * 100_000


def running_step(store: Store) -> int:
    store.insert_workflow("wf-aaaaa", "wf", {"name": "wf"}, {}, {}, {})
    with store.write() as conn:
        step = store.insert_step(conn, "wf-aaaaa", 0, "root", "s", "t", "Pod", "Running",
                                 {"parameters": {}, "artifacts": {}}, None)
    assert step is not None
    return step


def test_a_large_output_is_stored_once_and_read_back(tmp_path) -> None:
    store = Store.open(tmp_path / "h")
    step = running_step(store)
    with store.write() as conn:  # an executor that left the value inline (dpdispatcher)
        store.set_step_phase(conn, step, "Running", "Succeeded",
                             outputs={"parameters": {"a": BIG, "b": BIG, "n": 3},
                                      "artifacts": {}})
        store.insert_step(conn, "wf-aaaaa", step, "0.c", "c", "t", "Pod", "Pending",
                          {"parameters": {"x": BIG}, "artifacts": {}}, None)
    texts = [r[0] for r in store.conn.execute("SELECT outputs FROM steps WHERE outputs NOT NULL"
                                              " UNION ALL SELECT inputs FROM steps")]
    assert max(len(t) for t in texts) < 1000
    counted = store.conn.execute("SELECT count(*), sum(bytes) FROM parameter_values").fetchone()
    assert tuple(counted) == (1, len(BIG))
    outputs = json.loads(store.step(step)["outputs"])
    assert outputs["parameters"]["n"] == 3 and values.is_ref(outputs["parameters"]["a"])
    assert values.expand(outputs, store.read_value)["parameters"]["b"] == BIG


def test_an_old_store_with_inline_values_keeps_working(tmp_path) -> None:
    home = tmp_path / "h"
    store = Store.open(home)
    step = running_step(store)
    with store.write() as conn:  # what hpcflow wrote before version 6: the value inline
        conn.execute("UPDATE steps SET outputs=? WHERE id=?",
                     (json.dumps({"parameters": {"a": BIG}, "artifacts": {}}), step))
        conn.execute("DROP TABLE parameter_values")
        conn.execute("UPDATE meta SET value='5' WHERE key='schema_version'")
    store.close()
    store = Store.open(home)
    assert store.schema_version() == SCHEMA_VERSION
    text = store.step(step)["outputs"]
    assert json.loads(text)["parameters"]["a"] == BIG
    shown = _io_json(text, None)["parameters"]["a"]
    assert shown["elided"]["bytes"] == len(BIG)
    assert shown["elided"]["sha256"] == hashlib.sha256(BIG.encode()).hexdigest()
    assert _io_json(text, store.read_value)["parameters"]["a"] == BIG


def test_the_write_ahead_log_is_cut_back_after_a_large_value(tmp_path) -> None:
    home = tmp_path / "h"
    store = Store.open(home)
    with store.write() as conn:
        store.put_value(conn, os.urandom(WAL_TRUNCATE_AT + (8 << 20)))
    wal = home / "store.db-wal"
    assert wal.stat().st_size > WAL_TRUNCATE_AT
    StoreKeeper(store, home, interval=0, keep=1).between_cycles()
    assert wal.stat().st_size == 0
    assert store.integrity_ok()


def test_coercing_a_stored_value_reads_it_only_when_it_must() -> None:
    as_json = values.make_ref(b'{"a": 1}', "dict")
    text = coerce_text(as_json, "str", read=None)  # the stored bytes are already its text
    assert values.ref_info(text)["kind"] == "str"
    assert values.ref_info(text)["sha256"] == values.ref_info(as_json)["sha256"]
    listed = values.make_ref(b"[1, 2]", "str")
    assert coerce_text(listed, "List[int]", read=lambda info: b"[1, 2]") == [1, 2]
    assert coerce_text(listed, "str", read=None) is listed


def step_result(tmp_path, raw: bytes, rel: str = "outputs/parameters/a") -> dict:
    """A step's outputs whose parameter ``a`` names its value file."""
    ref = values.make_ref(raw, "str")
    values.ref_info(ref)["file"] = rel
    return {"parameters": {"a": ref}, "artifacts": {}}


def test_a_value_file_that_changed_or_is_missing_or_elsewhere_is_refused(tmp_path) -> None:
    store = Store.open(tmp_path / "h")
    result = step_result(tmp_path, b"x" * 10)
    assert "changed after" in value_files.ingest(store, lambda rel: b"y" * 10, "/d", result)
    assert "is missing" in value_files.ingest(store, lambda rel: None, "/d", result)
    outside = step_result(tmp_path, b"x" * 10, rel="../../etc/passwd")
    assert "not one of the step's outputs" in value_files.ingest(store, lambda rel: b"", "/d",
                                                                   outside)
    assert value_files.ingest(store, lambda rel: b"x" * 10, "/d", result) is None
    assert store.read_value({"sha256": hashlib.sha256(b"x" * 10).hexdigest()}) == b"x" * 10
    stripped = value_files.strip_files(result)
    assert "file" not in values.ref_info(stripped["parameters"]["a"])


def test_the_runner_refuses_an_input_file_that_is_not_the_named_value(tmp_path) -> None:
    (tmp_path / "inputs" / "parameters").mkdir(parents=True)
    (tmp_path / "inputs" / "parameters" / "a").write_bytes(b"tampered")
    ref = values.make_ref(b"original", "str")
    values.ref_info(ref)["file"] = "inputs/parameters/a"
    with pytest.raises(ValueError, match="SHA-256 differs"):
        values.expand(ref, value_files.reader(tmp_path))


def test_a_schema_6_store_is_refused_by_nothing_older(tmp_path) -> None:
    Store.open(tmp_path / "h").close()
    conn = sqlite3.connect(tmp_path / "h" / "store.db")
    try:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] \
            == str(SCHEMA_VERSION)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='parameter_values'"
                            ).fetchone()
    finally:
        conn.close()
