"""Container steps offloaded to Argo, beside local steps of the same workflow: through the
STAND-IN Argo Server (tests/services/argo_standin: Kubernetes and Argo cannot run here; it
speaks Argo v3.7.18's REST API and runs each pod as a local process) and the real Ceph RGW,
which carries the steps' files and artifacts both ways."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.conftest import fault_env, run_cli, stop_engine, wait_until
from tests.integration.flows import await_fault_kill, steps, submit, wait
from tests.services.argo_standin.launcher import StandinArgo

CREATE = "POST /api/v1/workflows/{namespace}"
DELETE = "DELETE /api/v1/workflows/{namespace}/{name}"
GET = "GET /api/v1/workflows/{namespace}/{name}"
TERMINATE = "PUT /api/v1/workflows/{namespace}/{name}/terminate"
LIST = "GET /api/v1/workflows/{namespace}"

MIXED = '''
from pathlib import Path
from hpcflow import ArgoExecutor, Step, Workflow
from hpcflow.python import OP, Artifact, PythonOPTemplate

@OP.function
def write(n: int) -> {"data": Artifact(Path)}:
    Path("data.txt").write_text(" ".join(str(i) for i in range(n)))
    return {"data": Path("data.txt")}

@OP.function
def transform(data: Artifact(Path), factor: int) -> {"scaled": Artifact(Path), "total": int}:
    import os
    numbers = [int(x) * factor for x in Path(data).read_text().split()]
    Path("scaled.txt").write_text(" ".join(map(str, numbers)))
    print("transformed in", os.getcwd())
    return {"scaled": Path("scaled.txt"), "total": sum(numbers)}

@OP.function
def read(scaled: Artifact(Path)) -> {"last": int}:
    return {"last": int(Path(scaled).read_text().split()[-1])}

wf = Workflow("mixed")
first = Step("write", PythonOPTemplate(write), parameters={"n": 5})
middle = Step("transform", PythonOPTemplate(transform, image="python:3.11-slim"),
              parameters={"factor": 10}, artifacts={"data": first.outputs.artifacts["data"]},
              executor=ArgoExecutor(cluster="k8s", cpu="500m", memory="256Mi", POD))
last = Step("read", PythonOPTemplate(read),
            artifacts={"scaled": middle.outputs.artifacts["scaled"]})
wf.add(first)
wf.add(middle)
wf.add(last)
wf.submit()
'''


def argo_home(tmp_path: Path, argo: StandinArgo, s3_env: dict[str, str],
              extra: str = "") -> Path:
    """A home whose config has [storage] on the RGW (the stand-in's bucket) and [argo.k8s]
    with the stand-in's token in a 0600 file."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    token = tmp_path / "argo.token"
    token.write_text(argo.token + "\n")
    token.chmod(0o600)
    config = home / "config.toml"
    config.write_text(
        f'[storage]\nkind = "s3"\nbucket = "{argo.bucket}"\n'
        f'endpoint = "{s3_env["HPCFLOW_TEST_S3_ENDPOINT"]}"\n'
        f'access_key = "{s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}"\n'
        f'[argo.k8s]\nserver = "{argo.url}"\nnamespace = "{argo.namespace}"\n'
        f'token_file = "{token}"\nartifact_secret = "argo-artifacts"\n'
        f'min_poll_interval = 0.5\nmax_poll_interval = 2\n{extra}')
    config.chmod(0o600)
    return home


@pytest.fixture
def argo_case(tmp_path: Path, argo_server: StandinArgo, s3_env: dict[str, str]):
    home = argo_home(tmp_path, argo_server, s3_env)
    yield home
    stop_engine(home)


def test_a_container_step_runs_on_argo_between_local_steps(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    home = argo_case
    argo_server.reset_calls()
    wf_id = submit(tmp_path, home, MIXED.replace(", POD", ", node_selector={'pool': 'cpu'}"))
    pod = wait_until(lambda: next((p for w in argo_server.workflows() for p in w["pods"]
                                   if wf_id in w["name"]), None), "the step's pod")
    assert pod["image"] == "python:3.11-slim"
    assert pod["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert pod["nodeSelector"] == {"pool": "cpu"}
    final = wait(home, tmp_path, wf_id)
    data = steps(home, tmp_path, wf_id)
    assert final["phase"] == "Succeeded", data
    assert data["transform"]["outputs"]["parameters"]["total"] == 100
    assert data["read"]["outputs"]["parameters"]["last"] == 40
    # one Argo Workflow, for the container step only, removed once its result was recorded
    calls = wait_until(lambda: (c := argo_server.calls()).get(DELETE) and c, "the clean-up")
    assert calls.get(CREATE) == 1 and calls.get(DELETE) == 1
    assert not calls.get(GET), calls  # polls list; no get per step
    # its log comes through the Argo Server while the Workflow lives, from the bucket after
    logged = run_cli(["logs", wf_id, "transform"], home, tmp_path)
    assert logged.returncode == 0 and "transformed in" in logged.stdout, logged.stderr


def test_the_token_is_never_in_the_store_logs_or_workflows(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    home = argo_case
    wf_id = submit(tmp_path, home, MIXED.replace(", POD", ""))
    assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
    token = argo_server.token.encode()
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert token not in path.read_bytes(), path
    assert token not in json.dumps(argo_server.workflows()).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert token not in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    mode = stat.S_IMODE((tmp_path / "argo.token").stat().st_mode)
    assert mode == 0o600


ONE = '''
from hpcflow import ArgoExecutor, Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def work(x: int) -> {"y": int}:
    import time
    time.sleep(SLEEP)
    return {"y": x + 1}

wf = Workflow("argo-one")
wf.add(Step("work", PythonOPTemplate(work, image="IMAGE"), parameters={"x": 1},
            executor=ArgoExecutor(cluster="k8s")EXTRA))
wf.submit()
'''


def one(image: str, sleep: float = 0, extra: str = "") -> str:
    return ONE.replace("IMAGE", image).replace("SLEEP", str(sleep)).replace("EXTRA", extra)


def test_sigkill_right_after_create_makes_one_argo_workflow(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    """The daemon is killed the moment the Argo Server answered the create, before the
    Workflow's name is recorded: the next daemon finds it (409 AlreadyExists on its create,
    or by name) and adopts it; the step runs once."""
    home = argo_case
    argo_server.reset_calls()
    wf_id = submit(tmp_path, home, one("python:3.11-crash"), env=fault_env("kill-after-submit"))
    await_fault_kill(home)
    assert steps(home, tmp_path, wf_id)["work"]["phase"] == "Pending"
    assert run_cli(["daemon", "start"], home, tmp_path).returncode == 0
    assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
    assert steps(home, tmp_path, wf_id)["work"]["outputs"]["parameters"]["y"] == 2
    assert argo_server.calls().get(CREATE) == 1
    assert "not created again" in (home / "logs" / "daemon.log").read_text() or \
        argo_server.calls().get(GET, 0) >= 1


def test_an_argo_server_outage_fails_no_step(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    """The Argo Server refuses connections for 20 s while the step runs: the cluster is
    unreachable for a while, like an SSH machine, and the step goes on."""
    home = argo_case
    wf_id = submit(tmp_path, home, one("python:3.11-outage", sleep=4))
    wait_until(lambda: steps(home, tmp_path, wf_id)["work"]["phase"] == "Running",
               "the step to run")
    argo_server.down(20)
    final = wait(home, tmp_path, wf_id, timeout=240)
    assert final["phase"] == "Succeeded", steps(home, tmp_path, wf_id)
    assert "cannot be reached" in (home / "logs" / "daemon.log").read_text()


@pytest.mark.parametrize("token, status, words", [
    ("not-a-token", "401 Unauthenticated", "renew it"),
    ("other-namespace-token", "403 PermissionDenied", "may not create workflows in "
                                                      "namespace 'hpcflow'")])
def test_a_refused_token_is_one_line_naming_the_token_and_namespace(
        tmp_path: Path, argo_server: StandinArgo, s3_env: dict[str, str], token: str,
        status: str, words: str) -> None:
    home = argo_home(tmp_path, argo_server, s3_env)
    (tmp_path / "argo.token").write_text(token)
    try:
        wf_id = submit(tmp_path, home, one("python:3.11-token"))
        assert wait(home, tmp_path, wf_id)["phase"] in ("Error", "Failed")
        reason = steps(home, tmp_path, wf_id)["work"]["reason"]
        assert status in reason and words in reason, reason
        assert f"token_file {tmp_path / 'argo.token'}" in reason and "\n" not in reason
        assert token not in reason
        doctor = run_cli(["doctor", "k8s"], home, tmp_path)
        assert doctor.returncode == 1 and status in doctor.stdout, doctor.stdout
    finally:
        stop_engine(home)


@pytest.mark.parametrize("fault, phase, words", [
    ("OOMKilled", "Failed", "ran out of memory (OOMKilled"),
    ("ImagePullBackOff", "Failed", "ImagePullBackOff: Back-off pulling image"),
    ("Evicted", "Failed", "evicted or preempted"),
    ("Preempted", "Failed", "evicted or preempted"),
])
def test_pod_failures_become_step_reasons(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo, fault: str, phase: str,
        words: str) -> None:
    home = argo_case
    image = f"python:3.11-{fault.lower()}"
    argo_server.fault(image, fault)
    try:
        wf_id = submit(tmp_path, home, one(image))
        assert wait(home, tmp_path, wf_id, timeout=300)["phase"] == phase
        step = steps(home, tmp_path, wf_id)["work"]
        assert step["phase"] == phase and words in step["reason"], step
        if fault in ("Evicted", "Preempted"):  # not the step's fault: retried as a node
            assert step["attempt"] >= 1, step  # failure is
    finally:
        argo_server.fault(image, None)


def test_an_image_without_python_says_so(tmp_path: Path, argo_server: StandinArgo,
                                         s3_env: dict[str, str]) -> None:
    home = argo_home(tmp_path, argo_server, s3_env, extra='python = "python3-absent"\n')
    try:
        wf_id = submit(tmp_path, home, one("busybox:1"))
        assert wait(home, tmp_path, wf_id)["phase"] == "Failed"
        reason = steps(home, tmp_path, wf_id)["work"]["reason"]
        assert "the step's image has no python3-absent" in reason, reason
    finally:
        stop_engine(home)


def test_terminate_terminates_the_argo_workflow(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    home = argo_case
    argo_server.reset_calls()
    wf_id = submit(tmp_path, home, one("python:3.11-terminate", sleep=600))
    wait_until(lambda: steps(home, tmp_path, wf_id)["work"]["phase"] == "Running",
               "the step to run")
    assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
    assert wait(home, tmp_path, wf_id)["phase"] == "Terminated"
    # terminated, then removed at once: no poll would come to collect it
    wait_until(lambda: (c := argo_server.calls()).get(TERMINATE) and c.get(DELETE),
               "the Argo terminate and delete calls")
    assert not [w for w in argo_server.workflows() if wf_id in w["name"]]


def test_the_argo_offload_example_runs_on_slurm_and_argo(
        tmp_path: Path, argo_server: StandinArgo, s3_env: dict[str, str],
        slurm_env: dict) -> None:
    """examples/argo_offload.py as written: Slurm, then the (stand-in) Argo, then Slurm."""
    from tests.conftest import EXAMPLES

    home = argo_home(tmp_path, argo_server, s3_env)
    argo_server.reset_calls()
    try:
        result = run_cli(["run", str(EXAMPLES / "argo_offload.py")], home, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "phase: Succeeded" in result.stdout and "frames: 1000" in result.stdout
        assert "msd positive: True" in result.stdout
        assert argo_server.calls().get(CREATE) == 1
        with sqlite3.connect(home / "store.db") as db:  # where each step's job ran
            ran = dict(db.execute("SELECT steps.name, jobs.executor FROM jobs JOIN steps ON "
                                  "steps.id = jobs.step_id").fetchall())
        assert ran == {"simulate": "slurm", "postprocess": "k8s", "analyse": "slurm"}, ran
    finally:
        stop_engine(home)


SCRIPTS = '''
from hpcflow import (ArgoExecutor, OutputParameter, PythonScriptOPTemplate, ShellOPTemplate,
                     Step, Workflow)

shell = ShellOPTemplate(name="shout", image="alpine:3.19",
                        script="echo hello from $(basename $PWD) | tr a-z A-Z > /tmp/out.txt")
shell.outputs.parameters = {"said": OutputParameter(value_from_path="/tmp/out.txt")}
script = PythonScriptOPTemplate(name="add", image="python:3.11-alpine",
                                script="open('/tmp/sum.txt', 'w').write(str(2 + 3))")
script.outputs.parameters = {"sum": OutputParameter(value_from_path="/tmp/sum.txt", type=int)}
wf = Workflow("argo-scripts")
wf.add([Step("shout", shell, executor=ArgoExecutor(cluster="k8s")),
        Step("add", script, executor=ArgoExecutor(cluster="k8s"))])
wf.submit()
'''


def test_shell_and_script_templates_run_in_their_image(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    home = argo_case
    argo_server.reset_calls()
    wf_id = submit(tmp_path, home, SCRIPTS)
    assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded", steps(home, tmp_path, wf_id)
    data = steps(home, tmp_path, wf_id)
    assert data["shout"]["outputs"]["parameters"]["said"].startswith("HELLO FROM ")
    assert data["add"]["outputs"]["parameters"]["sum"] == 5
    assert argo_server.calls().get(CREATE) == 2


PACKED = '''
from hpcflow import ArgoExecutor, Step, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def square(x: int) -> {"y": int}:
    return {"y": x * x}

wf = Workflow("argo-packed")
wf.add(Step("square", PythonOPTemplate(square, image="IMAGE"), parameters={"x": "{{item}}"},
            with_param=argo_range(N), executor=ArgoExecutor(cluster="k8s"EXTRA)))
wf.submit()
'''


def test_group_size_packs_ready_steps_into_one_argo_workflow(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo) -> None:
    home = argo_case
    argo_server.reset_calls()
    wf_id = submit(tmp_path, home, PACKED.replace("IMAGE", "python:3.11-packed")
                   .replace("N)", "12)").replace("EXTRA", ", group_size=5"))
    assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded", steps(home, tmp_path, wf_id)
    assert steps(home, tmp_path, wf_id)["square"]["outputs"]["parameters"]["y"] == [
        i * i for i in range(12)]
    calls = wait_until(lambda: (c := argo_server.calls()).get(DELETE, 0) >= 3 and c,
                       "the packs' clean-up")
    assert calls.get(CREATE) == 3  # 12 steps, 5 to an Argo Workflow


@pytest.mark.timeout(900)
def test_500_live_steps_cost_one_list_per_poll(
        tmp_path: Path, argo_server: StandinArgo, s3_env: dict[str, str]) -> None:
    """500 steps wait for a node at once (the stand-in holds their pods Pending, no process):
    every poll is one list call for all of them, never a get per step, and each step is
    created exactly once. Terminating the workflow terminates each Argo Workflow."""
    image = "python:3.11-unschedulable"
    argo_server.fault(image, "Unschedulable")
    home = argo_home(tmp_path, argo_server, s3_env, extra="max_workflows = 600\n")
    try:
        argo_server.reset_calls()
        wf_id = submit(tmp_path, home, PACKED.replace("IMAGE", image).replace("N)", "500)")
                       .replace("EXTRA", ""))
        wait_until(lambda: argo_server.calls().get(CREATE, 0) >= 500, "500 Argo Workflows",
                   timeout=600)
        pending = wait_until(lambda: (rows := [s for s in json.loads(run_cli(
            ["steps", wf_id, "--json"], home, tmp_path).stdout) if s["type"] == "Pod"])
            and all("Unschedulable" in (s.get("reason") or "") for s in rows) and rows,
            "every step Pending with Kubernetes' reason", timeout=300)
        assert len(pending) == 500 and {s["phase"] for s in pending} == {"Pending"}
        before = argo_server.calls()
        wait_until(lambda: argo_server.calls().get(LIST, 0) >= before.get(LIST, 0) + 3,
                   "three more polls")
        after = argo_server.calls()
        assert after.get(CREATE) == 500 and not after.get(GET), after
        assert run_cli(["terminate", wf_id], home, tmp_path).returncode == 0
        assert wait(home, tmp_path, wf_id)["phase"] == "Terminated"
        wait_until(lambda: argo_server.calls().get(TERMINATE, 0) >= 500, "500 terminates")
    finally:
        argo_server.fault(image, None)
        stop_engine(home)


def test_images_true_sends_image_steps_to_argo(tmp_path: Path, argo_server: StandinArgo,
                                               s3_env: dict[str, str]) -> None:
    """dflow's style: no executor named; the step with an image goes to the cluster that
    says images = true, the one without runs here."""
    home = argo_home(tmp_path, argo_server, s3_env, extra="images = true\n")
    script = MIXED.replace(
        ',\n              executor=ArgoExecutor(cluster="k8s", cpu="500m", memory="256Mi", POD)',
        "")
    assert "executor=" not in script
    try:
        argo_server.reset_calls()
        wf_id = submit(tmp_path, home, script)
        assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
        assert argo_server.calls().get(CREATE) == 1
        with sqlite3.connect(home / "store.db") as db:
            ran = dict(db.execute("SELECT steps.name, jobs.executor FROM jobs JOIN steps ON "
                                  "steps.id = jobs.step_id").fetchall())
        assert ran == {"write": "local", "transform": "k8s", "read": "local"}, ran
    finally:
        stop_engine(home)


def test_a_step_timeout_is_a_timeout_error(argo_case: Path, tmp_path: Path) -> None:
    home = argo_case
    wf_id = submit(tmp_path, home, one("python:3.11-slow", sleep=120,
                                       extra=", timeout=3"))
    assert wait(home, tmp_path, wf_id)["phase"] == "Failed"
    step = steps(home, tmp_path, wf_id)["work"]
    assert "TimeoutError" in step["reason"], step


def test_doctor_checks_server_token_namespace_and_artifacts_over_tls(
        tmp_path: Path, argo_server_tls: StandinArgo, s3_env: dict[str, str]) -> None:
    home = argo_home(tmp_path, argo_server_tls, s3_env,
                     extra=f'ca_bundle = "{argo_server_tls.ca}"\n')
    done = run_cli(["doctor", "k8s"], home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"k8s: ok  Argo Server {argo_server_tls.url} reachable (version v3.7" in done.stdout
    assert "k8s: ok  token accepted; workflows may be listed in namespace 'hpcflow'" in \
        done.stdout
    assert "keys from the Secret 'argo-artifacts'" in done.stdout
    # without the CA, TLS verification refuses the self-signed server, in one line
    config = home / "config.toml"
    config.write_text(config.read_text().replace(f'ca_bundle = "{argo_server_tls.ca}"\n', ""))
    refused = run_cli(["doctor", "k8s"], home, tmp_path)
    assert refused.returncode == 1
    assert "k8s: FAIL Argo cluster k8s" in refused.stdout and "TLS verification failed" in \
        refused.stdout, refused.stdout


FAILING = '''
from hpcflow import ArgoExecutor, Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def broken(x: int) -> {"y": int}:
    print("about to fail on", x)
    raise ValueError(f"cannot handle {x}")

wf = Workflow("argo-fails")
wf.add(Step("broken", PythonOPTemplate(broken, image="python:3.11-fails"),
            parameters={"x": 7}, executor=ArgoExecutor(cluster="k8s")))
wf.submit()
'''


def test_a_failing_op_keeps_its_reason_and_log_tail_and_gc_empties_the_bucket(
        argo_case: Path, tmp_path: Path, argo_server: StandinArgo,
        s3_env: dict[str, str]) -> None:
    from tests.integration.conftest import s3_boto

    home = argo_case
    wf_id = submit(tmp_path, home, FAILING)
    assert wait(home, tmp_path, wf_id)["phase"] == "Failed"
    step = steps(home, tmp_path, wf_id)["broken"]
    assert step["reason"].startswith("ValueError: cannot handle 7"), step
    shown = run_cli(["steps", wf_id], home, tmp_path).stdout
    assert "about to fail on 7" in shown, shown  # the kept tail of its log
    boto = s3_boto(s3_env)

    def left() -> list[str]:
        found = boto.list_objects_v2(Bucket=argo_server.bucket, Prefix=f"argo/{wf_id}/")
        return [o["Key"] for o in found.get("Contents", [])]

    assert left()  # its result and log stay for `hpcflow logs`
    pruned = run_cli(["gc", "--older-than", "0s"], home, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert left() == []
