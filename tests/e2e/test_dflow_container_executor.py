"""dflow's ``ContainerExecutor``: steps whose template has an image run in a container on the
machine that runs them (here, the daemon's own), through the container CLI's documented
command line. No Docker engine runs on this test machine and Apptainer cannot be installed,
so the executables are stand-ins (tests/standins/docker, tests/standins/apptainer) that check
the form, record the call, and run the command on the host as the container would."""

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait
from tests.integration.test_containers import BOXED as SLURM_BOXED

DOCKER = REPO / "tests" / "standins" / "docker" / "docker"
APPTAINER = REPO / "tests" / "standins" / "apptainer" / "apptainer"

# the apptainer test's workflow, with dflow's ContainerExecutor as every step's executor
BOXED = SLURM_BOXED.replace("SlurmExecutor, Output", "ContainerExecutor, Output") \
    .replace('SlurmExecutor(machine="boxed", partition="debug", time="0:05:00")',
             "ContainerExecutor(EXECUTABLE)")
assert "SlurmExecutor" not in BOXED


@pytest.mark.parametrize("kind", ["docker", "singularity"])
def test_container_executor_runs_steps_with_an_image_in_the_container(tmp_path: Path,
                                                                      kind: str):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    standin = DOCKER if kind == "docker" else APPTAINER
    wf_id = _submit(tmp_path, home, BOXED.replace("EXECUTABLE", f"{kind}={str(standin)!r}"))
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        steps = _steps(home, tmp_path, wf_id)
        assert steps["in-image"]["outputs"]["parameters"] == {"image": "python:3.11", "y": 2}
        assert steps["on-host"]["outputs"]["parameters"] == {"image": "host", "y": 3}
        assert steps["shell"]["outputs"]["parameters"]["said"].strip() == \
            "hi-from-alpine:3.19"
        # an artifact made in the container reaches a step on the host
        assert steps["read"]["outputs"]["parameters"]["text"] == "boxed"
        runs = home / "runs"
        record = "docker-calls.jsonl" if kind == "docker" else "apptainer-calls.jsonl"
        calls = [json.loads(line) for line in (runs / record).read_text().splitlines()]
        images = sorted(c["image"] for c in calls)
        if kind == "docker":  # registry references as Docker takes them, as the user
            assert images == ["alpine:3.19", "python:3.11", "python:3.11"]
            for call in calls:
                options = call["options"]
                assert options[:3] == ["--user", options[1], "--rm"]
                assert options[3:5] == ["-v", f"{runs}:{runs}"]
                assert "HPCFLOW_RESULT_KEYS" in options and "PYTHONPATH" in options
        else:
            assert images == ["docker://alpine:3.19", "docker://python:3.11",
                              "docker://python:3.11"]
            for call in calls:
                assert call["options"] == ["--bind", str(runs)]
        for call in calls:
            assert call["command"][:3] == ["python3", "-m", "hpcflow.daemon.runner"]
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
