"""dflow's async example (``examples/test_async.py``): a step reads another's output through a
volume (``.pvc()``) while that step still runs. Run as dflow code, unchanged, through
``hpcflow run --as-dflow`` on the local executor (the same on the real Slurm:
``tests/integration/test_volumes_slurm.py``).

The two steps can only both succeed if they run at the same time: the writing step waits
for the reading one to have started (a mark it leaves) before it writes, and fails if that
never happens; the reading step waits for the file to appear in the volume. A reading step
that waited for the writer, or a volume that never received the copy, fails the test."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import stop_engine

ASYNC = '''
import time
EXECUTOR_IMPORT

from dflow import (InputArtifact, InputParameter, OutputArtifact, OutputParameter,
                   ShellOPTemplate, Step, Workflow)

WAIT = "n=0; while [ ! -e {path} ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n+1)); done\\n"

hello = ShellOPTemplate(
    name="hello", image="alpine:latest",
    script=WAIT.format(path="{{inputs.parameters.marks}}/echo-started")
    + "[ -e {{inputs.parameters.marks}}/echo-started ] || exit 3\\n"
    + "echo Hello > /tmp/bar.txt")
hello.inputs.parameters = {"marks": InputParameter()}
hello.outputs.artifacts = {"bar": OutputArtifact(path="/tmp/bar.txt")}

echo = ShellOPTemplate(
    name="echo", image="alpine:latest",
    script="touch {{inputs.parameters.marks}}/echo-started\\n"
    + WAIT.format(path="/tmp/foo.txt") + "cat /tmp/foo.txt > /tmp/got.txt")
echo.inputs.parameters = {"marks": InputParameter()}
echo.inputs.artifacts = {"foo": InputArtifact(path="/tmp/foo.txt")}
echo.outputs.parameters = {"got": OutputParameter(value_from_path="/tmp/got.txt")}

wf = Workflow(name="async")
step0 = Step(name="hello", template=hello, parameters={"marks": MARKS}, executor=EXECUTOR)
step1 = Step(name="echo", template=echo, parameters={"marks": MARKS}, executor=EXECUTOR,
             artifacts={"foo": step0.outputs.artifacts["bar"].pvc()})
wf.add([step0, step1])
wf.submit()

while wf.query_status() in ["Pending", "Running"]:
    time.sleep(1)
assert wf.query_status() == "Succeeded", wf.query_status()
got = wf.query_step(name="echo")[0].outputs.parameters["got"].value
assert got.strip() == "Hello", got
print("EXAMPLE OK", wf.id)
'''


def run_async_example(tmp_path: Path, executor: str = "None", executor_import: str = "",
                      env: dict | None = None) -> list[dict]:
    """Run the example with both steps on ``executor`` (Python source) and check what it
    left: the reader got the writer's output, through the workflow's private volume. The
    steps as ``hpcflow steps --json`` gives them."""
    home, marks = tmp_path / "home", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "async_example.py"
    script.write_text(ASYNC.replace("MARKS", repr(str(marks))).replace("EXECUTOR_IMPORT",
                      executor_import).replace("EXECUTOR", executor))
    env = dict(os.environ, HPCFLOW_HOME=str(home), HPCFLOW_ENGINE_IDLE_EXIT="120",
               HPCFLOW_LOCAL_PARALLELISM="2", **(env or {}))
    try:
        done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "run", "--as-dflow",
                               script.name], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "EXAMPLE OK" in done.stdout
        wf_id = done.stdout.split("EXAMPLE OK", 1)[1].split()[0]
        volume = home / "runs" / wf_id / "volumes" / "public"
        saved = list(volume.iterdir())
        assert [p.read_text() for p in saved] == ["Hello\n"]  # the copy, and nothing else
        for path in (volume.parent, volume, saved[0]):  # private, as everything of hpcflow's
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        steps = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "steps", wf_id,
                                "--json"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=240)
        echo = next(s for s in json.loads(steps.stdout) if s["name"] == "echo")
        assert echo["inputs"]["artifacts"]["foo"] == {
            "volume": {"name": "public", "subpath": saved[0].name}}
        return json.loads(steps.stdout)
    finally:
        stop_engine(home)


def test_a_step_reads_a_running_steps_output_through_a_volume(tmp_path: Path) -> None:
    steps = run_async_example(tmp_path)
    assert {s["machine"] for s in steps if s["type"] == "Pod"} == {"local"}
