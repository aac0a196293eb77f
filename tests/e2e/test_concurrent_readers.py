"""Many CLI readers while the daemon writes: 10 processes each run `hpcflow status WF --json`
100 times while a 500-step workflow runs, and not one of the 1000 calls fails.

Each reader is a separate Python process that launches the real command
(``python -m hpcflow.cli.main status WF --json``) as its own subprocess 100 times in a row, so
every call opens the store from scratch, exactly as a user's shell would. Measured on the
2-core test machine, the 1000 launches take about 55 s with nothing else running and several
minutes with both cores busy, so no wait here has a total budget: the readers and the
workflow are waited for as long as they make progress (a call or a step done at least every
STALL seconds). A call counts as an error if it exits non-zero, writes anything on stderr
(``database is locked`` included), or prints something that is not JSON with a ``"phase"``
key.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import integrity_ok, run_cli, wait_progressing

STEPS = 500
READERS = 10
CALLS = 100
PAUSE = 0.2  # seconds each step sleeps, so the run lasts about as long as the readers
STALL = 120  # seconds without one call or one step done: something is stuck

WORKFLOW = '''
from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int, pause: float) -> {"y": int}:
    import time
    time.sleep(pause)
    return {"y": x}

wf = Workflow("readers")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={"x": "{{item}}", "pause": PAUSE},
            with_param=argo_range(STEPS)))
wf.submit()
'''

READER = '''
import json
import subprocess
import sys

wf_id, calls, progress = sys.argv[1], int(sys.argv[2]), sys.argv[3]
errors, first, phases = 0, None, {}
for _ in range(calls):
    try:
        done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "status", wf_id,
                               "--json"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        problem = f"timed out after 60 s: {exc.stderr!r}"
    else:
        problem = None
        if done.returncode != 0 or done.stderr:
            problem = f"exit {done.returncode}, stderr: {done.stderr!r}"
        else:
            try:
                data = json.loads(done.stdout)
            except ValueError as exc:
                problem = f"not JSON ({exc}): {done.stdout[:500]!r}"
            else:
                if not isinstance(data, dict) or "phase" not in data:
                    problem = f"no 'phase' in {done.stdout[:500]!r}"
                else:
                    phases[data["phase"]] = phases.get(data["phase"], 0) + 1
    if problem is not None:
        errors += 1
        first = first or problem
    with open(progress, "a") as f:  # one byte per call, for the test to see progress
        f.write(".")
print(json.dumps({"calls": calls, "errors": errors, "first_error": first, "phases": phases}))
'''


def status(wf_id: str, home: Path, cwd: Path) -> dict:
    done = run_cli(["status", wf_id, "--json"], home, cwd)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return json.loads(done.stdout)


# about 55 s on an idle machine and 290 s with both cores busy: the waits inside follow
# progress, so the suite's 300 s cap per test must not cut it short
@pytest.mark.timeout(1800)
def test_ten_readers_a_hundred_status_calls_each_during_a_500_step_run(tmp_path):
    home = tmp_path / "home"
    script = tmp_path / "readers_wf.py"
    script.write_text(WORKFLOW.replace("STEPS", str(STEPS)).replace("PAUSE", str(PAUSE)))
    reader = tmp_path / "reader.py"
    reader.write_text(READER)
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120")
    procs: list[subprocess.Popen] = []
    try:
        submitted = run_cli(["submit", str(script)], home, tmp_path)
        assert submitted.returncode == 0, submitted.stderr
        wf_id = submitted.stdout.strip()
        before = wait_progressing(lambda: status(wf_id, home, tmp_path),
                                  lambda data: data["phase"] != "Pending", stall=STALL,
                                  what="the workflow's start", interval=0.1)
        # The readers start while the workflow runs, with most of its steps still to do.
        assert before["phase"] == "Running", before
        assert before["steps"].get("Succeeded", 0) < STEPS // 2, before

        started = time.time()
        counters = [tmp_path / f"reader-{i}.calls" for i in range(READERS)]
        procs = [subprocess.Popen([sys.executable, str(reader), wf_id, str(CALLS), str(counter)],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for counter in counters]

        def calls_and_exits() -> tuple[int, int]:
            calls = sum(c.stat().st_size for c in counters if c.exists())
            return calls, sum(proc.poll() is not None for proc in procs)

        wait_progressing(calls_and_exits, lambda seen: seen[1] == READERS, stall=STALL,
                         what="the readers (calls made, readers ended)")
        reports = []
        for proc in procs:
            out, err = proc.communicate()  # ended: nothing to wait for
            assert proc.returncode == 0 and not err, err
            reports.append(json.loads(out))
        readers_took = time.time() - started

        errors = sum(r["errors"] for r in reports)
        firsts = [r["first_error"] for r in reports if r["first_error"]]
        assert sum(r["calls"] for r in reports) == READERS * CALLS
        assert errors == 0, f"{errors} of {READERS * CALLS} status calls failed: {firsts}"
        running_seen = sum(r["phases"].get("Running", 0) for r in reports)
        # Every reader read the store while the engine was writing it.
        assert all(r["phases"].get("Running", 0) > 0 for r in reports), reports

        final = wait_progressing(lambda: status(wf_id, home, tmp_path),
                                 lambda data: data["phase"] not in ("Pending", "Running"),
                                 lambda data: data["steps"], stall=STALL,
                                 what="the workflow (steps by phase)")
        assert final["phase"] == "Succeeded", final
        assert final["steps"] == {"Succeeded": STEPS}, final
        listed = run_cli(["steps", wf_id, "--json"], home, tmp_path)
        assert listed.returncode == 0 and not listed.stderr, listed.stderr
        pods = [s for s in json.loads(listed.stdout) if s["type"] == "Pod"]
        assert len(pods) == STEPS and all(s["phase"] == "Succeeded" for s in pods)
        assert integrity_ok(home)
        print(f"{READERS * CALLS} status calls in {readers_took:.1f} s, {running_seen} of them "
              f"while the workflow was Running; run took "
              f"{final['finished_at'] - final['started_at']:.1f} s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        run_cli(["daemon", "stop"], home, tmp_path)
