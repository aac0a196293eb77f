"""A workflow submitted on a login node that does not lead its shared home is listed at once.

Another host leads the home (its lease, left here as that host would) and never takes the
inbox: ``wf.submit()`` on this host leaves the workflow there. ``hpcflow list``, ``list
--json`` and its filters, ``hpcflow status``, dflow's ``query_workflows`` and the web page's
list and workflow page all show it as Pending, "waiting in the inbox". Once this host leads
(the other released its lease) its engine takes and runs it, and it is listed once, as it
ran. ``HPCFLOW_FS_TYPE=nfs4`` is how a home on NFS is seen (``daemon/fs_kind.py``)."""

import json

import pytest
from conftest import run_cli

from hpcflow import Step, Workflow, query_workflows
from hpcflow.daemon import client
from hpcflow.daemon.leader import LeaderLease
from hpcflow.python import OP, PythonOPTemplate
from hpcflow.ui.api import Api


@OP.function
def add_one(x: int) -> {"y": int}:
    return {"y": x + 1}


def listed(home, tmp_path, *args: str) -> list[dict]:
    done = run_cli(["list", "--json", *args], home, tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_workflow_waiting_for_the_leader_host_is_listed_and_then_listed_once(
        hpc_home, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCFLOW_FS_TYPE", "nfs4")
    hpc_home.mkdir(mode=0o700)
    elsewhere = LeaderLease(hpc_home, ttl=3600, host="login9")
    assert elsewhere.acquire() is not None
    wf = Workflow("waiting", labels={"team": "a"})
    wf.add(Step("inc", PythonOPTemplate(add_one), parameters={"x": 1}))
    wf.submit()
    assert list((hpc_home / "inbox").glob("*.json")), "the submission did not go to the inbox"

    [row] = listed(hpc_home, tmp_path)
    assert (row["id"], row["phase"], row["message"], row["labels"]) == \
        (wf.id, "Pending", client.IN_THE_INBOX, {"team": "a"})
    assert row["created_at"] is not None
    assert [r["id"] for r in listed(hpc_home, tmp_path, "--phase", "pending")] == [wf.id]
    assert listed(hpc_home, tmp_path, "--phase", "Succeeded") == []
    assert [r["id"] for r in listed(hpc_home, tmp_path, "--label", "team=a")] == [wf.id]
    assert listed(hpc_home, tmp_path, "--label", "team=b") == []
    text = run_cli(["list"], hpc_home, tmp_path)
    assert wf.id in text.stdout and "Pending" in text.stdout, text.stdout + text.stderr
    live = run_cli(["status"], hpc_home, tmp_path)
    assert live.returncode == 0 and wf.id in live.stdout, live.stdout + live.stderr
    assert [w.id for w in query_workflows(labels={"team": "a"})] == [wf.id]

    page = Api(hpc_home)
    try:
        assert [w["id"] for w in page.workflows()["workflows"]] == [wf.id]
        shown = page.workflow(wf.id)
        assert (shown["phase"], shown["message"], shown["steps"]) == \
            ("Pending", client.IN_THE_INBOX, {})
        assert "<svg" in page.graph_svg(wf.id, fold=30)
    finally:
        page.close()

    # this host leads from now on: its engine takes the workflow from the inbox and runs it
    elsewhere.release()
    started = run_cli(["daemon", "start"], hpc_home, tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    assert wf.wait(timeout=180) == "Succeeded"
    rows = listed(hpc_home, tmp_path)
    assert [(r["id"], r["phase"]) for r in rows] == [(wf.id, "Succeeded")]
    assert not list((hpc_home / "inbox").glob("*.json"))
