"""What a step can reach and what the daemon takes from it: no credential of the daemon's
environment reaches a step's process (Python OPs and shell templates), and a ``result.json``
that the runner did not write is refused before anything of it is used (its pickled output
is never loaded, by the daemon or by the next step)."""

import base64
import json
import os
import pickle
import time
from pathlib import Path

from hpcflow import ShellOPTemplate, Step, Workflow
from hpcflow.io import OutputParameter
from hpcflow.python import OP, PythonOPTemplate
from hpcflow.values import PICKLE_TAG

SECRETS = {"BOHRIUM_PASSWORD": "bohr-secret", "BOHRIUM_TICKET": "bohr-ticket",
           "AWS_SECRET_ACCESS_KEY": "aws-secret", "AWS_SESSION_TOKEN": "aws-token",
           "AWS_ACCESS_KEY_ID": "aws-id", "CLUSTER_API_TOKEN": "api-token"}


@OP.function
def environment_names() -> {"names": list, "values": str}:
    import os

    return {"names": sorted(os.environ), "values": "\n".join(os.environ.values())}


def test_no_credential_of_the_daemon_reaches_a_step(hpc_home, monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HPCFLOW_KEEP_THIS", "plain")  # ordinary variables still pass
    shell = ShellOPTemplate(name="shell-env", image="alpine",
                            script="env > /tmp/env.txt")
    shell.outputs.parameters = {"env": OutputParameter(value_from_path="/tmp/env.txt")}
    wf = Workflow("no-credentials")
    wf.add([Step("python", PythonOPTemplate(environment_names)), Step("shell", shell)])
    wf.submit()
    assert wf.wait(timeout=300) == "Succeeded"
    python = wf.query_step(name="python")[0].outputs.parameters
    shell_env = wf.query_step(name="shell")[0].outputs.parameters["env"].value
    assert "HPCFLOW_KEEP_THIS" in python["names"].value and "HPCFLOW_KEEP_THIS" in shell_env
    for name, value in SECRETS.items():
        assert name not in python["names"].value and value not in python["values"].value
        assert name not in shell_env and value not in shell_env
    # nor the key the step's runner sealed its result with
    assert "HPCFLOW_RESULT_KEYS" not in python["names"].value


class Planted:
    """Loading this object runs code: it leaves a file behind."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@OP.function
def wait_for(go: str) -> {"y": object}:
    import time
    from pathlib import Path

    deadline = time.time() + 120
    while not Path(go).exists() and time.time() < deadline:
        time.sleep(0.1)
    return {"y": 1}


@OP.function
def consume(y: object) -> {"z": str}:
    return {"z": repr(y)}


def test_a_planted_result_is_refused_and_its_pickle_never_loaded(hpc_home, tmp_path) -> None:
    go, marker = tmp_path / "go", tmp_path / "pickle-was-loaded"
    wf = Workflow("planted-result")
    first = Step("first", PythonOPTemplate(wait_for), parameters={"go": str(go)})
    wf.add(first)
    wf.add(Step("second", PythonOPTemplate(consume),
                parameters={"y": first.outputs.parameters["y"]}))
    wf.submit()
    deadline = time.time() + 120
    step_dir = None
    while step_dir is None:
        assert time.time() < deadline, "the first step never started"
        claims = list((hpc_home / "runs" / wf.id).glob("first-*/claim"))
        step_dir = claims[0].parent if claims else None
        time.sleep(0.05)
    payload = base64.b64encode(pickle.dumps(Planted(str(marker)))).decode()
    forged = {"phase": "Succeeded", "started": time.time(), "finished": time.time(),
              "outputs": {"parameters": {"y": {PICKLE_TAG: payload}}, "artifacts": {}}}
    tmp = step_dir / ".forged.tmp"
    tmp.write_text(json.dumps(forged))
    os.replace(tmp, step_dir / "result.json")
    (hpc_home / "wake" / "done-forged").touch()
    try:
        assert wf.wait(timeout=300) in ("Failed", "Error")
        first_step = wf.query_step(name="first")[0]
        assert first_step.phase == "Error"
        assert "not written by the runner hpcflow started" in first_step.reason
        assert not wf.query_step(name="second")
        assert not marker.exists()
    finally:
        go.touch()  # let the real runner finish
