"""Queue limits are waited out, not failed, on the real schedulers of tests/services.

- Grid Engine with ``max_u_jobs 2`` (its global configuration, set with ``qconf -mconf`` and
  restored whatever happens): a workflow of six steps, all submitted at once, succeeds; some
  of its steps are seen Pending with Grid Engine's refusal meanwhile, ``daemon status`` shows
  the machine's lowered ``max_jobs``, no step fails or is retried, and Grid Engine's
  accounting shows one job per step (nothing submitted twice).
- Grid Engine and Slurm: a refusal for a mistake (an unknown queue, an unknown partition)
  still fails its step at once, with the scheduler's message.
- Slurm with a QOS whose ``MaxSubmitJobsPerUser`` is 2 (``sacctmgr``, removed at teardown):
  the same six steps succeed, seen Pending with ``QOSMaxSubmitJobPerUserLimit``. It needs
  slurmdbd (``sacctmgr show cluster`` works) and limits Slurm enforces
  (``AccountingStorageEnforce`` with ``limits``); it is skipped, saying which is missing,
  otherwise.

Grid Engine's configuration is global: every job of this user (other tests' too) counts
against ``max_u_jobs`` while the test runs, so the limit is held only as long as the test's
workflow needs it.
"""

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import integrity_ok, run_cli, wait_progressing, wait_until
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait

STEPS = 6

WORKFLOW = '''
from hpcflow import Step, Workflow, {executor}
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {{"y": int}}:
    import time
    time.sleep(3)
    return {{"y": x}}

wf = Workflow("{name}")
wf.add([Step(f"s{{i}}", PythonOPTemplate(nap), parameters={{"x": i}},
             executor={executor}({resources})) for i in range({steps})])
wf.submit()
'''

MISTAKE = '''
from hpcflow import Step, Workflow, {executor}
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def one(x: int) -> {{"y": int}}:
    return {{"y": x}}

wf = Workflow("{name}")
wf.add(Step("wrong", PythonOPTemplate(one), parameters={{"x": 1}},
            executor={executor}({resources})))
wf.submit()
'''


# -- Grid Engine's global configuration ----------------------------------------------------

def _sge_conf() -> str:
    return subprocess.run(["qconf", "-sconf", "global"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def _max_u_jobs() -> str:
    found = re.search(r"^max_u_jobs\s+(\S+)", _sge_conf(), flags=re.M)
    assert found, "qconf -sconf global shows no max_u_jobs"
    return found.group(1)


def _set_max_u_jobs(value: str) -> None:
    """``qconf -mconf global`` with an editor that changes only the max_u_jobs line; waits
    until qconf shows the new value (sge_conf(5): the change takes effect at once)."""
    with tempfile.TemporaryDirectory() as scratch:
        editor = Path(scratch, "edit")
        editor.write_text('#!/bin/sh\nsed -i "s/^max_u_jobs .*/max_u_jobs $HPCFLOW_MAX_U_JOBS/"'
                          ' "$1"\n')
        editor.chmod(0o700)
        subprocess.run(["qconf", "-mconf", "global"], check=True, capture_output=True,
                       timeout=60, env=dict(os.environ, EDITOR=str(editor),
                                            HPCFLOW_MAX_U_JOBS=value))
    wait_until(lambda: _max_u_jobs() == value, f"qconf to show max_u_jobs {value}", timeout=60)


@contextlib.contextmanager
def sge_max_u_jobs(value: int) -> Iterator[None]:
    before = _max_u_jobs()
    try:
        _set_max_u_jobs(str(value))
        yield
    finally:
        _set_max_u_jobs(before)


def _qacct(wf_id: str) -> str:
    return subprocess.run(["qacct", "-j", f"hpcflow-{wf_id}-*"], capture_output=True,
                          text=True, timeout=120).stdout


def _accounted(wf_id: str, expected: int) -> Counter:
    """How many Grid Engine jobs ran for each step (job names encode the step id), once the
    accounting file holds ``expected`` steps."""
    def found() -> Counter:
        return Counter(re.findall(rf"^jobname\s+hpcflow-{re.escape(wf_id)}-(\d+)-\d+\s*$",
                                  _qacct(wf_id), flags=re.M))

    return wait_progressing(found, lambda seen: len(seen) >= expected, len, stall=60,
                            what=f"accounting records of {wf_id}")


# -- following a workflow held back ----------------------------------------------------------

def _follow(home: Path, cwd: Path, wf_id: str, words: str) -> tuple[dict, set[str], list[str]]:
    """Until the workflow ends: its final status, the steps seen Pending with a reason holding
    ``words``, and every ``daemon status`` line that showed a lowered max_jobs."""
    held: set[str] = set()
    lowered: list[str] = []

    def probe() -> dict:
        data = json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout)
        for name, step in _steps(home, cwd, wf_id).items():
            if step["phase"] == "Pending" and words in (step.get("reason") or ""):
                held.add(name)
        status = run_cli(["daemon", "status"], home, cwd).stdout
        lowered.extend(line.strip() for line in status.splitlines()
                       if "max_jobs lowered" in line)
        return data

    final = wait_progressing(probe, lambda data: data["phase"] not in ("Pending", "Running"),
                             lambda data: data["steps"], stall=600, interval=1.0,
                             what=f"workflow {wf_id}")
    return final, held, lowered


def _check_all_succeeded_once(home: Path, cwd: Path, wf_id: str) -> int:
    """Every step succeeded at its first attempt and none ever failed; how many submissions
    were held back (refused intents)."""
    steps = {n: s for n, s in _steps(home, cwd, wf_id).items() if s["type"] == "Pod"}
    assert sorted(steps) == [f"s{i}" for i in range(STEPS)]
    for name, step in steps.items():
        assert step["phase"] == "Succeeded", (name, step)
        assert step["outputs"]["parameters"]["y"] == int(name[1:])
        assert not step.get("attempt"), (name, step)  # never failed, never retried
    # no step was ever Failed or Error on the way (the store's events, read-only)
    with contextlib.closing(sqlite3.connect(f"file:{home / 'store.db'}?mode=ro",
                                            uri=True)) as db:
        bad = db.execute("SELECT step_id, to_phase, detail FROM events WHERE workflow_id=? "
                         "AND kind='step' AND to_phase IN ('Failed', 'Error')",
                         (wf_id,)).fetchall()
        held = db.execute("SELECT count(*) FROM events WHERE workflow_id=? AND kind='job' "
                          "AND to_phase='refused'", (wf_id,)).fetchone()[0]
    assert not bad, bad
    return held


# -- Grid Engine -----------------------------------------------------------------------------

SGE = dict(executor="SGEExecutor", resources='queue="all.q", time="0:10:00"')


@pytest.mark.timeout(1800)
def test_sge_max_u_jobs_holds_steps_back_and_all_succeed(tmp_path: Path, sge_env: dict):
    home = tmp_path / "home"
    with sge_max_u_jobs(2):
        wf_id = _submit(tmp_path, home, WORKFLOW.format(name="sge-limited", steps=STEPS, **SGE))
        try:
            final, held, lowered = _follow(home, tmp_path, wf_id, "max_u_jobs")
        finally:
            run_cli(["daemon", "stop"], home, tmp_path)
    assert final["phase"] == "Succeeded", final
    # the steps beyond the limit waited, Pending with Grid Engine's own words
    assert held, "no step was seen held back for max_u_jobs"
    assert _check_all_succeeded_once(home, tmp_path, wf_id) >= len(held)
    assert lowered and "sge: max_jobs lowered to" in lowered[0], lowered
    assert "job rejected: only 2 jobs are allowed per user" in lowered[0], lowered
    jobs = _accounted(wf_id, STEPS)
    assert len(jobs) == STEPS and set(jobs.values()) == {1}, jobs  # one SGE job per step
    assert integrity_ok(home)


def test_sge_unknown_queue_still_fails_at_once(tmp_path: Path, sge_env: dict):
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, MISTAKE.format(
        name="sge-no-queue", executor="SGEExecutor", resources='queue="nope"'))
    try:
        final = _wait(home, tmp_path, wf_id, timeout=120)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
    assert final["phase"] in ("Failed", "Error"), final
    step = _steps(home, tmp_path, wf_id)["wrong"]
    assert step["phase"] == "Error", step
    assert 'Job was rejected because job requests unknown queue "nope"' in step["reason"], step
    assert "held back" not in step["reason"]


# -- Slurm -----------------------------------------------------------------------------------

def test_slurm_unknown_partition_still_fails_at_once(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, MISTAKE.format(
        name="slurm-no-partition", executor="SlurmExecutor", resources='partition="nope"'))
    try:
        final = _wait(home, tmp_path, wf_id, timeout=120)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
    assert final["phase"] in ("Failed", "Error"), final
    step = _steps(home, tmp_path, wf_id)["wrong"]
    assert step["phase"] == "Error", step
    assert "Invalid partition name specified" in step["reason"], step
    assert "held back" not in step["reason"]


def _slurm_limits_missing() -> str | None:
    """Why a QOS limit cannot be tested on this Slurm (None: it can)."""
    shown = subprocess.run(["sacctmgr", "-n", "show", "cluster"], capture_output=True,
                           text=True, timeout=60)
    if shown.returncode != 0 or not shown.stdout.strip():
        return ("no slurmdbd: `sacctmgr show cluster` fails "
                f"({(shown.stderr or shown.stdout).strip()[:200]})")
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                            timeout=60).stdout
    enforce = re.search(r"^AccountingStorageEnforce\s*=\s*(\S+)", config, flags=re.M)
    if enforce is None or "limits" not in enforce.group(1).split(","):
        return ("slurmdbd runs, but Slurm does not enforce QOS limits here "
                f"(AccountingStorageEnforce = {enforce.group(1) if enforce else '?'}; it needs "
                "limits,qos and a restart of slurmctld, which the services' owner does)")
    return None


@contextlib.contextmanager
def slurm_qos(max_submit: int) -> Iterator[str]:
    """A QOS whose MaxSubmitJobsPerUser is ``max_submit``, allowed to this user; removed
    afterwards (the user's QOS list as before)."""
    name = f"hpcflowql{uuid.uuid4().hex[:6]}"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True,
                          check=True).stdout.strip()

    def sacctmgr(*args: str, check: bool = True) -> None:
        subprocess.run(["sacctmgr", "-i", *args], capture_output=True, text=True, timeout=60,
                       check=check)

    sacctmgr("add", "qos", name, f"MaxSubmitJobsPerUser={max_submit}")
    try:
        sacctmgr("modify", "user", "where", f"name={user}", "set", f"qos+={name}")
        yield name
    finally:
        sacctmgr("modify", "user", "where", f"name={user}", "set", f"qos-={name}", check=False)
        sacctmgr("delete", "qos", name, check=False)


@pytest.mark.timeout(1800)
def test_slurm_qos_submit_limit_holds_steps_back_and_all_succeed(tmp_path: Path,
                                                                   slurm_env: dict):
    missing = _slurm_limits_missing()
    if missing:
        pytest.skip(f"the Slurm QOS limit cannot be tested here: {missing}")
    home = tmp_path / "home"
    with slurm_qos(2) as qos:
        # the controller learns of the new QOS from slurmdbd: wait until it takes it
        wait_until(lambda: qos in subprocess.run(
            ["scontrol", "show", "assoc_mgr", "flags=qos", f"qos={qos}"], capture_output=True,
            text=True, timeout=60).stdout, f"slurmctld to know QOS {qos}", timeout=120)
        resources = f'partition="debug", time="0:10:00", qos="{qos}"'
        wf_id = _submit(tmp_path, home, WORKFLOW.format(
            name="slurm-limited", steps=STEPS, executor="SlurmExecutor", resources=resources))
        try:
            final, held, lowered = _follow(home, tmp_path, wf_id, "QOSMaxSubmitJobPerUserLimit")
        finally:
            run_cli(["daemon", "stop"], home, tmp_path)
    assert final["phase"] == "Succeeded", final
    assert held, "no step was seen held back for QOSMaxSubmitJobPerUserLimit"
    assert _check_all_succeeded_once(home, tmp_path, wf_id) >= len(held)
    assert lowered and "QOSMaxSubmitJobPerUserLimit" in lowered[0], lowered
    assert integrity_ok(home)
