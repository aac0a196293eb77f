"""What the integration tests of every scheduler share: the same workflows (``.format``
templates over the executor class, its resources, the scheduler's job-id variable and a
short kind name), and submitting and following them through the ``hpcflow`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_cli, wait_progressing

# A Python OP writing an artifact, a shell template reading it (artifact in and out), and a
# loop of 20.
PIPELINE = '''
from pathlib import Path
from hpcflow import ShellOPTemplate, Step, Workflow, {executor}, argo_range
from hpcflow import InputArtifact, OutputArtifact, OutputParameter
from hpcflow.python import OP, Artifact, PythonOPTemplate

@OP.function
def write(n: int) -> {{"text": Artifact(Path), "job": str}}:
    import os
    Path("numbers.txt").write_text("\\n".join(str(i) for i in range(n)))
    return {{"text": Path("numbers.txt"), "job": os.environ.get("{job_env}", "none")}}

@OP.function
def square(x: int) -> {{"y": int}}:
    return {{"y": x * x}}

count = ShellOPTemplate(name="count", image="alpine",
    script="wc -l < /tmp/in/numbers.txt > /tmp/lines.txt && mkdir -p /tmp/out && "
           "cp /tmp/in/numbers.txt /tmp/out/copy.txt")
count.inputs.artifacts = {{"numbers": InputArtifact(path="/tmp/in/numbers.txt")}}
count.outputs.parameters = {{"lines": OutputParameter(value_from_path="/tmp/lines.txt", type=int)}}
count.outputs.artifacts = {{"copy": OutputArtifact(path="/tmp/out/copy.txt")}}

cluster = {executor}({resources})
wf = Workflow("on-{kind}")
first = Step("write", PythonOPTemplate(write), parameters={{"n": 5}}, executor=cluster)
wf.add(first)
wf.add([Step("count", count, artifacts={{"numbers": first.outputs.artifacts["text"]}},
             executor=cluster),
        Step("square", PythonOPTemplate(square), parameters={{"x": "{{{{item}}}}"}},
             with_param=argo_range(20), executor=cluster)])
wf.submit()
'''

FAILING = '''
from hpcflow import Step, Workflow, {executor}
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def broken(x: int) -> {{"y": int}}:
    raise ValueError(f"cannot handle {{x}}")

wf = Workflow("{kind}-fails")
wf.add(Step("broken", PythonOPTemplate(broken), parameters={{"x": 7}},
            executor={executor}({resources})))
wf.submit()
'''


def pipeline(executor: str, resources: str, job_env: str, kind: str) -> str:
    return PIPELINE.format(executor=executor, resources=resources, job_env=job_env, kind=kind)


def failing(executor: str, resources: str, kind: str) -> str:
    return FAILING.format(executor=executor, resources=resources, kind=kind)


def submit(tmp_path: Path, home: Path, text: str, env: dict | None = None) -> str:
    """``hpcflow submit`` of ``text`` as a script; the workflow id."""
    script = tmp_path / f"wf{len(list(tmp_path.glob('wf*.py')))}.py"
    script.write_text(text)
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HPCFLOW_HOME=str(home), **(env or {})))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def wait(home: Path, cwd: Path, wf_id: str, timeout: float = 180) -> dict:
    """``status --json`` once the workflow has ended; it fails only when no step has changed
    phase for ``timeout`` seconds (a busy machine makes a workflow slower, not stuck)."""
    return wait_progressing(
        lambda: json.loads(run_cli(["status", wf_id, "--json"], home, cwd).stdout),
        lambda data: data["phase"] not in ("Pending", "Running"),
        lambda data: data["steps"], stall=timeout, what=f"workflow {wf_id}")


def steps(home: Path, cwd: Path, wf_id: str) -> dict[str, dict]:
    """``steps --json`` by step name."""
    out = run_cli(["steps", wf_id, "--json"], home, cwd)
    return {s["name"]: s for s in json.loads(out.stdout)}


def check_pipeline(home: Path, cwd: Path, wf_id: str) -> None:
    """What every scheduler's run of ``PIPELINE`` must give: each step ran inside a job, the
    shell template read the Python OP's artifact, the loop's 20 squares in order, 22 leaf
    steps succeeded, and the shell template's output artifact downloads as the user would."""
    data = steps(home, cwd, wf_id)
    assert data["write"]["outputs"]["parameters"]["job"] not in ("", "none")
    assert data["count"]["outputs"]["parameters"]["lines"] == 4  # wc -l: 4 newlines
    assert data["square"]["outputs"]["parameters"]["y"] == [i * i for i in range(20)]
    items = json.loads(run_cli(["steps", wf_id, "--json", "--phase", "Succeeded"], home,
                               cwd).stdout)
    assert len([s for s in items if s["type"] == "Pod"]) == 22
    copy = subprocess.run(
        [sys.executable, "-c",
         "import sys; from hpcflow import Workflow, download_artifact;"
         f"s = Workflow(id='{wf_id}').query_step(name='count')[0];"
         "print(download_artifact(s.outputs.artifacts['copy'], path=sys.argv[1]))",
         str(cwd / "got")],
        env=dict(os.environ, HPCFLOW_HOME=str(home)), capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr
    got = list((cwd / "got").rglob("copy.txt"))
    assert got and got[0].read_text().split() == [str(i) for i in range(5)]


def check_job_ids_shown(home: Path, cwd: Path, wf_id: str) -> None:
    """``hpcflow get`` and ``steps`` show each step's scheduler job id: the id the job itself
    saw in its environment (the pipeline's ``write`` step returns it), and its machine."""
    tree = json.loads(run_cli(["get", wf_id, "-o", "json"], home, cwd).stdout)
    nodes = {}
    pending = list(tree["tree"])
    while pending:
        node = pending.pop()
        nodes[node["name"]] = node
        pending += node.get("children", [])
    seen_by_job = steps(home, cwd, wf_id)["write"]["outputs"]["parameters"]["job"]
    assert nodes["write"]["job_id"] == seen_by_job, nodes["write"]
    assert nodes["write"]["machine"] and nodes["write"]["machine"] != "local"
    text = run_cli(["get", wf_id], home, cwd).stdout
    line = next(line for line in text.splitlines() if "─ write " in line)
    assert f" {seen_by_job} " in f"{line} ", line
    assert steps(home, cwd, wf_id)["write"]["job_id"] == seen_by_job


def await_fault_kill(home: Path, timeout: float = 120) -> None:
    """Wait until a daemon started with the ``kill-after-submit`` fault (``fault_env``) has
    logged its first submission and killed itself (its lock released)."""
    from hpcflow.daemon.engine import engine_pid

    log = home / "logs" / "daemon.log"
    deadline = time.time() + timeout
    while "fault injection: SIGKILL after submitting" not in (
            log.read_text() if log.exists() else ""):
        assert time.time() < deadline, "the faulty daemon never submitted"
        time.sleep(0.1)
    while engine_pid(home) is not None:
        assert time.time() < deadline, "the faulty daemon did not die"
        time.sleep(0.1)
