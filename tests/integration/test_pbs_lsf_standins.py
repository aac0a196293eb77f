"""Steps as PBS and LSF jobs, through ``PBSExecutor()`` and ``LSFExecutor()``.

These run against STAND-INS because no PBS or LSF server can run here (neither is packaged
for Debian, and LSF is proprietary): ``tests/standins/pbs/{qsub,qstat,qdel,qselect}`` and
``tests/standins/lsf/{bsub,bjobs,bkill}`` answer in the real tools' documented output formats
and run each job script as a local background process in its own session, with its output
files, time limit and kill signals. The daemon is started by the test with the stand-ins
first on its PATH. What they show: the scheduler modules' command lines and parsers work
end to end (a Python OP, a shell template, artifacts in and out, a loop of 20), and a failing
step, a job killed outside hpcflow (``qdel``/``bkill``) and a job killed at its time limit
fail with the scheduler's reason; job arrays (``array_size``: PBS ``qsub -J``, LSF
``bsub -J "name[1-N]%K"``) as the stand-ins replay them after the tools' documented
behaviour (subjobs/elements ``SEQ[i]``, the throttle, ``qstat -t``, ``bjobs`` ``jobindex``,
``qdel``/``bkill`` of one element): the steps go out as one array, a failing element is
retried alone as a job of its own, terminating cancels the elements. What they cannot show:
a real server's quirks (an older PBS refusing the ``%K`` throttle, say).

LSF's ``-W`` counts minutes; for these tests only, the stand-in's minute lasts
``HPCFLOW_STANDIN_LSF_SECONDS_PER_MINUTE`` seconds. PBS's walltime takes seconds as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO, fault_env, integrity_ok, run_cli, wait_progressing, wait_until
from tests.integration.flows import FAILING, PIPELINE, await_fault_kill, check_pipeline

STANDINS = REPO / "tests" / "standins"
#: What differs between the two schedulers in these tests.
KINDS = {
    "pbs": {"executor": "PBSExecutor", "resources": 'walltime="0:10:00", ncpus=1, mem="1gb"',
            "tiny_limit": 'walltime="00:00:03"', "job_env": "PBS_JOBID",
            "directives": ["#PBS -l walltime=0:10:00", "#PBS -l select=1:ncpus=1:mem=1gb"],
            "killed": "killed by signal 15 outside hpcflow (PBS: qdel or an administrator) "
                      "(exit code 271)",
            "limit": "reached its walltime (PBS JOB_EXEC_KILL_WALLTIME): ask for more with "
                     "walltime= (exit code -29)",
            "limit_log": ("log.txt", "=>> PBS: job killed: walltime")},
    "lsf": {"executor": "LSFExecutor", "resources": "runlimit=10, ntasks=1",
            "tiny_limit": "runlimit=1", "job_env": "LSB_JOBID",
            "directives": ["#BSUB -W 10", "#BSUB -n 1"],
            "killed": "killed outside hpcflow (LSF TERM_OWNER: bkill or an administrator) "
                      "(exit code 130)",
            "limit": "reached its run limit (LSF TERM_RUNLIMIT): ask for more with "
                     "runlimit= (exit code 140)",
            "limit_log": ("lsf-output.txt", "TERM_RUNLIMIT: job killed after reaching")},
}
#: The throttle directive of an array of 12 at most 4 at once, as each module writes it.
THROTTLED = {"pbs": "#PBS -J 1-12%4", "lsf": '#BSUB -J "hpcflow-{wf}-{step}-0-array[1-12]%4"'}
ELEMENT = re.compile(r"(\d+)\[(\d+)\]")  # 1234[7]: a subjob (PBS), an element (LSF)
SECONDS_PER_LSF_MINUTE = "3"

#: What the sleeper's step naps: far longer than the test lasts on a busy machine, so a job
#: killed or over its limit cannot be taken for one that ran out (leftovers are killed).
NAP = 600

SLEEPER = '''
from hpcflow import Step, Workflow, {executor}
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {{"y": int}}:
    import time
    time.sleep({nap})
    return {{"y": x}}

wf = Workflow("{kind}-{name}")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={{"x": 1}},
            executor={executor}({resources})))
wf.submit()
'''


@pytest.fixture(params=sorted(KINDS))
def cluster(request: pytest.FixtureRequest, tmp_path: Path):
    """A stand-in cluster of ``request.param`` and a daemon that reaches it through PATH."""
    kind = request.param
    home, state = tmp_path / "home", tmp_path / "standin-state"
    home.mkdir()
    (home / "config.toml").write_text(  # the default machine, polled often for the test
        f'[machines.{kind}]\nscheduler = "{kind}"\n'
        "min_poll_interval = 0.2\nmax_poll_interval = 1.0\n")
    env = dict(os.environ, PATH=f"{STANDINS / kind}{os.pathsep}{os.environ['PATH']}",
               HPCFLOW_HOME=str(home), HPCFLOW_STANDIN_STATE=str(state),
               HPCFLOW_STANDIN_LSF_SECONDS_PER_MINUTE=SECONDS_PER_LSF_MINUTE)
    started = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "start"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        yield {"kind": kind, "home": home, "state": state, "env": env, "cwd": tmp_path,
               **KINDS[kind]}
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
        _kill_leftover_jobs(state)


def _kill_leftover_jobs(state: Path) -> None:
    for path in state.glob("*-*.json"):
        job = json.loads(path.read_text())
        if job.get("pid") and not job.get("finished"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job["pid"], signal.SIGKILL)


def _submit(c: dict, template: str, **values: str) -> str:
    script = c["cwd"] / f"wf{len(list(c['cwd'].glob('wf*.py')))}.py"
    script.write_text(template.format(kind=c["kind"], executor=c["executor"],
                                      job_env=c["job_env"], nap=NAP,
                                      **{"resources": c["resources"], **values}))
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                          cwd=c["cwd"], env=c["env"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _wait(c: dict, wf_id: str, timeout: float = 120) -> dict:
    """The final status; fails only when no step changed phase for ``timeout`` seconds."""
    return wait_progressing(
        lambda: json.loads(run_cli(["status", wf_id, "--json"], c["home"], c["cwd"]).stdout),
        lambda data: data["phase"] not in ("Pending", "Running"),
        lambda data: data["steps"], stall=timeout, what=wf_id, interval=0.3)


def _steps(c: dict, wf_id: str) -> dict[str, dict]:
    out = run_cli(["steps", wf_id, "--json"], c["home"], c["cwd"])
    return {s["name"]: s for s in json.loads(out.stdout)}


def _tool(c: dict, *argv: str) -> subprocess.CompletedProcess:
    """A stand-in command run as an administrator at the terminal would."""
    return subprocess.run(list(argv), env=c["env"], capture_output=True, text=True, timeout=30)


def _running_job_of(c: dict, wf_id: str) -> str:
    """The id of the workflow's running job, from the scheduler's own listing."""
    deadline = time.time() + 120
    prefix = f"hpcflow-{wf_id}-"
    while True:
        if c["kind"] == "pbs":
            listing = json.loads(_tool(c, "qstat", "-f", "-F", "json").stdout)
            found = [job_id.split(".")[0] for job_id, job in listing.get("Jobs", {}).items()
                     if job["Job_Name"].startswith(prefix) and job["job_state"] == "R"]
        else:
            lines = _tool(c, "bjobs", "-noheader", "-o",
                          "jobid stat job_name delimiter='|'").stdout.splitlines()
            found = [line.split("|")[0] for line in lines
                     if line.split("|")[2].startswith(prefix) and line.split("|")[1] == "RUN"]
        if found:
            return found[0]
        assert time.time() < deadline, f"no running job of {wf_id}"
        time.sleep(0.3)


def _jobs_by_step(state: Path, wf_id: str) -> Counter:
    """How many stand-in jobs each step of the workflow became (job names encode the step)."""
    names = [json.loads(p.read_text())["name"] for p in state.glob("*-*.json")]
    prefix = f"hpcflow-{wf_id}-"
    return Counter(n[len(prefix):].split("-")[0] for n in names if n.startswith(prefix))


def test_a_workflow_of_jobs(cluster: dict):
    c = cluster
    wf_id = _submit(c, PIPELINE)
    final = _wait(c, wf_id)
    assert final["phase"] == "Succeeded", final
    check_pipeline(c["home"], c["cwd"], wf_id)
    jobs = _jobs_by_step(c["state"], wf_id)
    assert len(jobs) == 22 and set(jobs.values()) == {1}, jobs  # one job per step
    script = next((c["home"] / "runs" / wf_id).glob("write-*/job.sh")).read_text()
    for directive in c["directives"]:
        assert directive in script.splitlines()
    assert integrity_ok(c["home"])


def test_failing_killed_and_timed_out_jobs(cluster: dict):
    c = cluster
    started = time.time()
    failing = _submit(c, FAILING)
    sleeping = _submit(c, SLEEPER, name="sleeps")
    limited = _submit(c, SLEEPER, name="limited", resources=c["tiny_limit"])

    assert _wait(c, failing)["phase"] == "Failed"
    broken = _steps(c, failing)["broken"]
    assert broken["phase"] == "Failed"
    assert broken["reason"] == "ValueError: cannot handle 7"  # the runner's word
    logs = run_cli(["logs", failing, "broken"], c["home"], c["cwd"])
    assert "ValueError: cannot handle 7" in logs.stdout  # the job's own output file

    # kill the sleeping step's job with qdel/bkill, as an administrator might
    job_id = _running_job_of(c, sleeping)
    killed = _tool(c, "qdel" if c["kind"] == "pbs" else "bkill", job_id)
    assert killed.returncode == 0, killed.stderr
    assert _wait(c, sleeping)["phase"] == "Failed"
    nap = _steps(c, sleeping)["nap"]
    assert c["killed"] in nap["reason"], nap

    assert _wait(c, limited)["phase"] == "Failed"
    nap = _steps(c, limited)["nap"]
    assert c["limit"] in nap["reason"], nap
    log_name, line = c["limit_log"]
    step_dir = next((c["home"] / "runs" / limited).glob("nap-*"))
    assert line in (step_dir / log_name).read_text()
    assert time.time() - started < NAP  # both naps were cut short, neither ran out


FAN = '''
from pathlib import Path
from hpcflow import Step, Workflow, {executor}, argo_range
from hpcflow.python import OP, PythonOPTemplate, TransientError

@OP.function
def tiny(x: int, marks: str) -> {{"y": int}}:
    import os
    print("index", os.environ.get("PBS_ARRAY_INDEX") or os.environ.get("LSB_JOBINDEX"))
    mark = Path(marks) / f"fail-{{x}}"
    if mark.exists():  # this element fails once, then succeeds when retried
        mark.unlink()
        print(f"element {{x}} fails this time")
        raise TransientError(f"element {{x}} failed on purpose")
    return {{"y": 2 * x}}

@OP.function
def total(ys: list) -> {{"s": int}}:
    return {{"s": sum(ys)}}

wf = Workflow("{kind}-array")
fan = Step("tiny", PythonOPTemplate(tiny, retry_on_transient_error=1),
           parameters={{"x": "{{{{item}}}}", "marks": "{marks}"}}, with_param=argo_range(12),
           executor={executor}({resources}, array_size=12, array_throttle=4))
wf.add(fan)
wf.add(Step("total", PythonOPTemplate(total), parameters={{"ys": fan.outputs.parameters["y"]}},
            executor={executor}({resources})))
wf.submit()
'''

WAITING = '''
import time
from pathlib import Path
from hpcflow import Step, Workflow, {executor}, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def wait_for(x: int, go: str) -> {{"y": int}}:
    while not Path(go).exists():
        time.sleep(0.5)
    return {{"y": x}}

wf = Workflow("{kind}-array-cancel")
wf.add(Step("wait", PythonOPTemplate(wait_for),
            parameters={{"x": "{{{{item}}}}", "go": "{go}"}},
            with_param=argo_range(6), executor={executor}({resources}, array_size=6)))
wf.submit()
'''


def _records(state: Path) -> list[dict]:
    """The stand-in's job records: plain jobs, arrays (``indices``) and their elements."""
    return [json.loads(p.read_text()) for p in state.glob("*-*.json")]


def test_steps_as_one_array_and_a_failing_element_retried_alone(cluster: dict):
    """Twelve steps of one template are ONE array job (stand-ins of qsub -J / bsub -J), each
    step an element with its own id (SEQ[i]), log and retry; element 8 fails once and is
    retried as a plain job of its own while the others keep theirs."""
    c = cluster
    marks = c["cwd"] / "marks"
    marks.mkdir()
    (marks / "fail-7").touch()  # item 7: element 8
    wf_id = _submit(c, FAN, marks=str(marks))
    final = _wait(c, wf_id)
    assert final["phase"] == "Succeeded", final
    found = _steps(c, wf_id)
    assert found["total"]["outputs"]["parameters"]["s"] == 2 * sum(range(12))
    items = {name: s for name, s in found.items() if name.startswith("tiny(")}
    assert len(items) == 12
    retried = items.pop("tiny(7:7)")
    assert retried["attempt"] == 1 and str(retried["job_id"]).isdigit(), retried
    elements = {name: ELEMENT.fullmatch(s["job_id"] or "") for name, s in items.items()}
    assert all(elements.values()), sorted(s["job_id"] for s in items.values())
    arrays = {m.group(1) for m in elements.values() if m}
    assert len(arrays) == 1, arrays
    assert sorted(int(m.group(2)) for m in elements.values() if m) == \
        [i for i in range(1, 13) if i != 8]
    # what the stand-in scheduler was given: one array of 12, a plain job for the retry, one
    # for the total; the array's element 8 is the first attempt of item 7
    records = _records(c["state"])
    prefix = f"hpcflow-{wf_id}-"
    mine = [r for r in records if r["name"].startswith(prefix)]
    assert len([r for r in mine if r.get("indices")]) == 1
    assert len([r for r in mine if not r.get("indices") and not r.get("array")]) == 2
    assert len([r for r in mine if r.get("array")]) == 12
    # the throttle: never more than 4 elements ran at once
    spans = [(r["started"], r["finished"]) for r in mine if r.get("array")]
    assert max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) <= 4
    # each element logged into its own step directory, with its own index
    first = Path(retried["step_dir"][:-2]) / "log.txt"
    assert "element 7 fails this time" in first.read_text()
    assert "index 8" in first.read_text()
    for name, step in items.items():
        index = elements[name].group(2)  # type: ignore[union-attr]
        assert f"index {index}\n" in (Path(step["step_dir"]) / "log.txt").read_text(), name
    script = next((c["home"] / "runs" / wf_id / "arrays").glob("*-array/job.sh")).read_text()
    name = next(r["name"] for r in mine if r.get("indices"))
    expected = THROTTLED[c["kind"]].format(wf=wf_id, step=name[len(prefix):].split("-")[0])
    assert expected in script.splitlines(), script
    assert integrity_ok(c["home"])


def _live_elements(c: dict, array: str) -> set[str]:
    """The array's elements still queued or running, from the stand-in's own listing."""
    if c["kind"] == "pbs":
        listing = json.loads(_tool(c, "qstat", "-f", "-F", "json", "-t").stdout)
        return {job_id.split(".")[0] for job_id, job in listing.get("Jobs", {}).items()
                if job_id.startswith(f"{array}[") and not job_id.startswith(f"{array}[]")
                and job["job_state"] in "QR"}
    lines = _tool(c, "bjobs", "-noheader", "-o",
                  "jobid stat jobindex delimiter='|'", array).stdout.splitlines()
    return {f"{array}[{line.split('|')[2]}]" for line in lines
            if line.split("|")[1] in ("PEND", "RUN")}


def test_terminating_a_workflow_cancels_its_elements(cluster: dict):
    c = cluster
    go = c["cwd"] / "go"
    wf_id = _submit(c, WAITING, go=str(go))
    try:
        def ids() -> list[str]:
            return [s["job_id"] for s in _steps(c, wf_id).values()
                    if s["type"] == "Pod" and s["job_id"]]

        recorded = wait_until(lambda: len(ids()) == 6 and ids(), "the array's six elements")
        match = ELEMENT.fullmatch(recorded[0])
        assert match, recorded
        array = match.group(1)
        assert {ELEMENT.fullmatch(i).group(1) for i in recorded} == {array}  # type: ignore
        assert _live_elements(c, array) == set(recorded)
        assert run_cli(["terminate", wf_id], c["home"], c["cwd"]).returncode == 0
        wait_until(lambda: not _live_elements(c, array), "the elements to leave the queue",
                   timeout=120)
        final = _wait(c, wf_id)
        assert final["phase"] == "Terminated", final
        # every element was cancelled (qdel/bkill of SEQ[i]), none ran to its end
        records = [r for r in _records(c["state"]) if str(r.get("array")) == array]
        assert len(records) == 6 and all(r.get("killed") for r in records), records
    finally:
        go.touch()


def test_a_crash_right_after_an_array_was_submitted_submits_nothing_twice(cluster: dict):
    """The ``kill-after-submit`` fault kills the daemon the moment the stand-in's qsub/bsub
    answers with the array's id, before any element's id is recorded: the next daemon finds
    the array by its name (qselect -N / bjobs -J: its elements wait for a file meanwhile, so
    the array is still in the queue) and gives each step its element."""
    c = cluster
    assert run_cli(["daemon", "stop"], c["home"], c["cwd"]).returncode == 0
    go = c["cwd"] / "go"
    try:
        wf_id = _submit({**c, "env": {**c["env"], **fault_env("kill-after-submit")}},
                        WAITING, go=str(go))
        await_fault_kill(c["home"])
        started = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon",
                                  "start"], env=c["env"], cwd=c["cwd"], capture_output=True,
                                 text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        log = c["home"] / "logs" / "daemon.log"
        wait_until(lambda: f"found in {c['kind']} as" in log.read_text(),
                   "the array found by its name")
    finally:
        go.touch()
    final = _wait(c, wf_id)
    assert final["phase"] == "Succeeded", final
    found = _steps(c, wf_id)
    elements = [ELEMENT.fullmatch(s["job_id"] or "") for n, s in found.items()
                if n.startswith("wait(")]
    assert all(elements) and len({m.group(1) for m in elements if m}) == 1, elements
    assert sorted(int(m.group(2)) for m in elements if m) == list(range(1, 7))
    # the array once: nothing submitted twice
    mine = [r for r in _records(c["state"]) if r["name"].startswith(f"hpcflow-{wf_id}-")]
    assert len([r for r in mine if r.get("indices")]) == 1
    assert not [r for r in mine if not r.get("indices") and not r.get("array")]
