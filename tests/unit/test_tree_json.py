"""``hpcflow get WF -o json`` written as it is read (``hpcflow/cli/tree_json.py``): the same
text as the whole tree dumped at once, and memory that does not grow with the workflow."""

import json
from pathlib import Path

from daemon.store import Store
from hpcflow.cli import render, tree_json
from hpcflow.cli.get_cmd import json_head, node_json
from hpcflow.cli.tree import build
from tests.conftest import cli_peak_rss

PHASES = ["Succeeded", "Failed", "Running", "Pending", "Error"]


def _workflow(store: Store, wf_id: str, items: int) -> None:
    """A root Steps holding a DAG of two steps, a loop of ``items`` steps (mixed phases),
    an empty Steps, and a Steps nesting a loop of three."""
    store.insert_workflow(wf_id, "tree", {"name": "tree"}, {}, {}, {})
    with store.write() as conn:
        def add(parent: int, name: str, type_: str, phase: str = "Succeeded") -> int:
            step_id = store.insert_step(conn, wf_id, parent, name, name, "t", type_, phase,
                                        {"parameters": {}, "artifacts": {}}, None)
            assert step_id is not None
            return step_id

        root = add(0, "tree", "Steps", "Running")
        dag = add(root, "nested", "DAG")
        add(dag, "a", "Pod")
        add(dag, "b", "Pod", "Failed")
        loop = add(root, "fan", "StepGroup", "Running")
        for i in range(items):
            add(loop, f"fan({i}:{i})", "Pod", PHASES[i % len(PHASES)])
        add(root, "empty", "Steps", "Pending")
        outer = add(root, "outer", "Steps")
        inner = add(outer, "inner", "StepGroup")
        for i in range(3):
            add(inner, f"inner({i})", "Pod")


def test_streamed_text_is_the_whole_tree_dumped_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(render.time, "time", lambda: 2e9)  # a running step's duration
    store = Store.open(tmp_path / "home")
    # more items than one read takes, so that a group's children come in several reads
    _workflow(store, "tree-1", tree_json.ROWS_PER_READ * 2 + 7)
    wf = store.conn.execute("SELECT * FROM workflows WHERE id='tree-1'").fetchone()
    roots = build(store.iter_step_outline("tree-1"), 0)
    expected = json.dumps({**json_head(wf), "steps": dict(roots[0].leaves),
                           "tree": [node_json(r) for r in roots]}, indent=2) + "\n"
    reads: list[int] = []

    def read(ids):
        reads.append(len(ids))
        return list(reversed(store.step_outline_rows(ids)))  # any order comes back

    out = tmp_path / "out.json"
    with out.open("w") as f:
        tree_json.write_tree(f, json_head(wf), tree_json.Shape.read(
            store.iter_step_shape("tree-1")), read, node_json)
    assert out.read_text() == expected
    assert max(reads) == tree_json.ROWS_PER_READ
    store.close()


def test_a_workflow_without_steps_yet(tmp_path):
    head = {"id": "w-1", "phase": "Pending"}
    out = tmp_path / "out.json"
    with out.open("w") as f:
        tree_json.write_tree(f, head, tree_json.Shape.read(()), lambda ids: [], node_json)
    assert out.read_text() == json.dumps({**head, "steps": {}, "tree": []}, indent=2) + "\n"


def test_get_json_of_a_large_workflow_keeps_memory_flat(tmp_path):
    """30,000 steps: the whole tree in memory at once took about 5 KB a step (505 MB peak
    at 100,000); written as read, the command stays near its size at start."""
    home = tmp_path / "home"
    store = Store.open(home)
    _workflow(store, "big-1", 30000)
    store.conn.execute("UPDATE workflows SET root_step=(SELECT min(id) FROM steps "
                       "WHERE workflow_id='big-1') WHERE id='big-1'")
    store.close()
    code, peak_kib, err = cli_peak_rss(["get", "big-1", "-o", "json"], home, tmp_path,
                                       tmp_path / "out.json")
    assert code == 0, err
    data = json.loads(Path(tmp_path / "out.json").read_text())
    fan = data["tree"][0]["children"][1]
    assert len(fan["children"]) == 30000 and fan["steps"]["Failed"] == 6000
    assert data["steps"]["Succeeded"] == 6000 + 1 + 3
    assert peak_kib < 80 * 1024, f"peak RSS {peak_kib // 1024} MB"
