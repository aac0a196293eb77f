"""Steps with ``image=`` on a machine with ``container = "apptainer"`` run inside it, on the
real Slurm. Apptainer cannot be installed here (no Debian package, not on PyPI), so the
machine's container command is a stand-in (tests/standins/apptainer) that checks the
documented ``apptainer exec [options] IMAGE COMMAND`` form, records the call, and runs the
command on the host."""

import json
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.integration.test_slurm_local import _steps, _submit, _wait

STANDIN = REPO / "tests" / "standins" / "apptainer" / "apptainer"

BOXED = '''
from hpcflow import ShellOPTemplate, Step, Workflow, SlurmExecutor, OutputParameter
from pathlib import Path
from hpcflow.python import OP, Artifact, PythonOPTemplate

@OP.function
def where(x: int) -> {"image": str, "y": int}:
    import os
    return {"image": os.environ.get("HPCFLOW_CONTAINER_IMAGE", "host"), "y": x + 1}

@OP.function
def make(text: str) -> {"made": Artifact(Path)}:
    Path("made.txt").write_text(text)
    return {"made": Path("made.txt")}

@OP.function
def read(made: Artifact(Path)) -> {"text": str}:
    return {"text": Path(made).read_text()}

hello = ShellOPTemplate(name="hello", image="alpine:3.19",
                        script="echo hi-from-$HPCFLOW_CONTAINER_IMAGE > /tmp/out.txt")
hello.outputs.parameters = {"said": OutputParameter(value_from_path="/tmp/out.txt")}
run = SlurmExecutor(machine="boxed", partition="debug", time="0:05:00")
wf = Workflow("boxed")
wf.add([Step("in-image", PythonOPTemplate(where, image="python:3.11"), parameters={"x": 1},
             executor=run),
        Step("on-host", PythonOPTemplate(where), parameters={"x": 2}, executor=run),
        Step("shell", hello, executor=run)])
made = Step("make", PythonOPTemplate(make, image="python:3.11"), parameters={"text": "boxed"},
            executor=run)
wf.add(made)
wf.add(Step("read", PythonOPTemplate(read), artifacts={"made": made.outputs.artifacts["made"]}))
wf.submit()
'''


def test_steps_with_an_image_run_in_the_container(tmp_path: Path, slurm_env: dict):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    runs = tmp_path / "boxed-runs"
    (home / "config.toml").write_text(f"""
[machines.boxed]
scheduler = "slurm"
work_root = "{runs}"
container = "{STANDIN}"
container_options = ["--nv"]
container_python = "/usr/bin/python3"
min_poll_interval = 0.5
max_poll_interval = 2
""")
    wf_id = _submit(tmp_path, home, BOXED)
    try:
        assert _wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
        steps = _steps(home, tmp_path, wf_id)
        assert steps["in-image"]["outputs"]["parameters"] == {"image": "python:3.11", "y": 2}
        assert steps["on-host"]["outputs"]["parameters"] == {"image": "host", "y": 3}
        assert steps["shell"]["outputs"]["parameters"]["said"].strip() == \
            "hi-from-alpine:3.19"
        calls = [json.loads(line)
                 for line in (runs / "apptainer-calls.jsonl").read_text().splitlines()]
        assert sorted(c["image"] for c in calls) == ["docker://alpine:3.19",
                                                     "docker://python:3.11",
                                                     "docker://python:3.11"]
        # an artifact made in the container reaches a step on the host
        assert steps["read"]["outputs"]["parameters"]["text"] == "boxed"
        for call in calls:
            assert call["options"] == ["--bind", str(runs), "--nv"]
            assert call["command"][:3] == ["/usr/bin/python3", "-m", "hpcflow.daemon.runner"]
        shell_log = run_cli(["logs", wf_id, "shell"], home, tmp_path).stdout
        assert "running in image 'alpine:3.19'" in shell_log
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
