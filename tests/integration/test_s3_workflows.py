"""Workflows whose artifacts live in the real Ceph RGW of tests/services: on the local
executor (storage from dflow's ``s3_config`` in the script), as jobs of the real Slurm
(storage from the config file's ``[storage]``; each job reads and writes S3 itself, with
the credentials handed over in its environment), and through a 20 s outage of the way to
the server in the middle of a running workflow. The keys never reach the store, a log or a
file of a job."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import run_cli
from tests.integration.conftest import s3_boto
from tests.integration.flows import steps as _steps
from tests.integration.flows import submit as _submit
from tests.integration.flows import wait as _wait
from tests.integration.tcp_proxy import TcpProxy

BLOB = bytes(range(256)) * 4096  # 1 MiB

PIPELINE = '''
from pathlib import Path
from hpcflow import (InputArtifact, OutputArtifact, OutputParameter, ShellOPTemplate, Step,
                     Workflow, s3_config, upload_artifact{executor_import})
from hpcflow.python import OP, Artifact, PythonOPTemplate
{storage}

@OP.function
def grow(tree: Artifact(Path), n: int) -> {{"out": Artifact(Path, archive=None),
                                            "total": int}}:
    total = sum(len(f.read_bytes()) for f in sorted(tree.rglob("*")) if f.is_file())
    out = Path("grown")
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "blob.bin").write_bytes(bytes(range(256)) * 4096 * n)
    (out / "count.txt").write_text(str(total))
    return {{"out": out, "total": total}}

check = ShellOPTemplate(name="check", image="alpine", script=(
    "md5sum /tmp/in/sub/blob.bin | cut -d' ' -f1 > /tmp/md5.txt && "
    "mkdir -p /tmp/out && cp /tmp/in/count.txt /tmp/out/count.txt"))
check.inputs.artifacts = {{"grown": InputArtifact(path="/tmp/in")}}
check.outputs.parameters = {{"md5": OutputParameter(value_from_path="/tmp/md5.txt")}}
check.outputs.artifacts = {{"count": OutputArtifact(path="/tmp/out/count.txt")}}

Path("data/sub").mkdir(parents=True, exist_ok=True)
Path("data/a.txt").write_text("alpha")
Path("data/sub/b.txt").write_text("beta!")
tree = upload_artifact("data")
wf = Workflow("s3-{kind}")
first = Step("grow", PythonOPTemplate(grow), parameters={{"n": 3}},
             artifacts={{"tree": tree}}{executor})
wf.add(first)
wf.add(Step("check", check, artifacts={{"grown": first.outputs.artifacts["out"]}}{executor}))
wf.submit()
'''


def s3_config_lines(endpoint: str, s3_env: dict[str, str], bucket: str, prefix: str) -> str:
    host = endpoint.split("://", 1)[1]
    return (f's3_config.update(endpoint="{host}", secure=False, bucket_name="{bucket}", '
            f'prefix="{prefix}", access_key="{s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"]}", '
            f'secret_key="{s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}")')


def assert_no_secret_in(home: Path, secret: str, skip: Path | None = None) -> None:
    """The secret key is in no file of the store, the logs or the step directories (its
    own private file under ``secrets/`` aside)."""
    needle = secret.encode()
    checked = 0
    for path in home.rglob("*"):
        if path.is_file() and path != skip and not path.is_relative_to(home / "secrets"):
            checked += 1
            assert needle not in path.read_bytes(), f"the secret key is in {path}"
    assert checked > 5


def bucket_keys(s3_env: dict[str, str], bucket: str) -> list[str]:
    boto = s3_boto(s3_env)
    return [o["Key"] for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]


def download_output(cwd: Path, home: Path, wf_id: str, step: str, name: str,
                    storage: str) -> Path:
    """``download_artifact`` of a step's output in a separate process, as a user would."""
    target = cwd / f"got-{step}-{name}"
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from hpcflow import Workflow, download_artifact, s3_config\n"
         f"{storage}\n"
         f"s = Workflow(id='{wf_id}').query_step(name='{step}')[0]\n"
         f"download_artifact(s.outputs.artifacts['{name}'], path=sys.argv[1])",
         str(target)],
        env=dict(os.environ, HPCFLOW_HOME=str(home)), capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    return target


def check_pipeline(home: Path, cwd: Path, wf_id: str, s3_env: dict[str, str], bucket: str,
                   prefix: str, storage: str) -> None:
    data = _wait(home, cwd, wf_id, timeout=240)
    assert data["phase"] == "Succeeded", run_cli(["steps", wf_id], home, cwd).stdout
    found = _steps(home, cwd, wf_id)
    assert found["grow"]["outputs"]["parameters"]["total"] == 10
    assert found["check"]["outputs"]["parameters"]["md5"].strip() == \
        hashlib.md5(BLOB * 3).hexdigest()
    keys = bucket_keys(s3_env, bucket)
    # everything under the prefix: the uploaded tree, the unarchived output file by file
    assert all(k.startswith(f"{prefix}/") for k in keys), keys
    assert f"{prefix}/wf/{wf_id}/" in "".join(keys)
    assert any(k.endswith("/out/grown/sub/blob.bin") for k in keys), keys
    got = download_output(cwd, home, wf_id, "check", "count", storage)
    assert [p.read_text() for p in got.rglob("count.txt")] == ["10"]


def test_workflow_on_the_local_executor_through_s3(s3_env, bucket, tmp_path: Path,
                                                   hpc_home: Path) -> None:
    prefix = f"local-{uuid.uuid4().hex[:6]}"
    storage = s3_config_lines(s3_env["HPCFLOW_TEST_S3_ENDPOINT"], s3_env, bucket, prefix)
    wf_id = _submit(tmp_path, hpc_home, PIPELINE.format(
        executor_import="", executor="", storage=storage, kind="local"))
    check_pipeline(hpc_home, tmp_path, wf_id, s3_env, bucket, prefix, storage)
    assert_no_secret_in(hpc_home, s3_env["HPCFLOW_TEST_S3_SECRET_KEY"])
    # gc prunes the workflow's objects from the bucket (the uploaded input stays)
    time.sleep(1.1)
    pruned = run_cli(["gc", "--older-than", "1s", "--json"], hpc_home, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    left = bucket_keys(s3_env, bucket)
    assert not [k for k in left if k.startswith(f"{prefix}/wf/{wf_id}/")], left
    assert [k for k in left if k.startswith(f"{prefix}/upload/")]


def test_workflow_on_slurm_jobs_through_s3(s3_env, slurm_env, bucket, tmp_path: Path,
                                           hpc_home: Path) -> None:
    prefix = f"slurm-{uuid.uuid4().hex[:6]}"
    hpc_home.mkdir(parents=True, exist_ok=True)
    config = hpc_home / "config.toml"
    config.write_text(
        "[storage]\n"
        f'kind = "s3"\nbucket = "{bucket}"\nprefix = "{prefix}"\n'
        f'endpoint = "{s3_env["HPCFLOW_TEST_S3_ENDPOINT"]}"\n'
        f'access_key = "{s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}"\n')
    config.chmod(0o644)
    script = PIPELINE.format(executor_import=", SlurmExecutor",
                             executor=', executor=SlurmExecutor(partition="debug", '
                                      'time="0:10:00")',
                             storage="", kind="slurm")
    (tmp_path / "wf.py").write_text(script)
    refused = run_cli(["submit", "wf.py"], hpc_home, tmp_path)
    assert refused.returncode != 0 and "chmod 600" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    config.chmod(0o600)
    wf_id = _submit(tmp_path, hpc_home, script)
    check_pipeline(hpc_home, tmp_path, wf_id, s3_env, bucket, prefix, "")
    step_dirs = sorted((hpc_home / "runs" / wf_id).iterdir())
    scripts = list((hpc_home / "runs" / wf_id).rglob("job.sh"))
    assert len(scripts) == 2, step_dirs
    # each job reached S3 itself (no relay directory), with keys from its environment
    assert not list((hpc_home / "runs" / wf_id).rglob(".relay"))
    for step_json in (hpc_home / "runs" / wf_id).rglob("step.json"):
        spec = json.loads(step_json.read_text())["storage"]
        # no way to the keys but the job's environment (no reference to the secrets file)
        assert spec["kind"] == "s3" and spec["secret_ref"] is None, spec
    # (the config file, which holds the key by the user's choice, aside)
    assert_no_secret_in(hpc_home, s3_env["HPCFLOW_TEST_S3_SECRET_KEY"], skip=config)


CHAIN = '''
from pathlib import Path
from hpcflow import Step, Workflow, s3_config
from hpcflow.python import OP, Artifact, PythonOPTemplate
{storage}

@OP.function
def extend(i: int, previous: Artifact(Path, optional=True)) -> {{"out": Artifact(Path)}}:
    import time
    time.sleep(2)
    data = previous.read_bytes() if previous else b""
    Path("chain.bin").write_bytes(data + bytes([i]) * (2 << 20))
    return {{"out": Path("chain.bin")}}

wf = Workflow("s3-outage")
prev = None
for i in range(6):
    step = Step(f"s{{i}}", PythonOPTemplate(extend), parameters={{"i": i}},
                artifacts={{"previous": prev.outputs.artifacts["out"]}} if prev else {{}})
    wf.add(step)
    prev = step
wf.submit()
'''


def test_a_20_s_outage_of_s3_mid_workflow(s3_env, bucket, tmp_path: Path,
                                          hpc_home: Path) -> None:
    """The way to RGW is cut (connections reset, new ones refused) for 20 s once the first
    step has finished; the steps that run meanwhile retry their transfers, the workflow
    finishes, and every step's artifact holds exactly what it should."""
    host, port = s3_env["HPCFLOW_TEST_S3_ENDPOINT"].rsplit("/", 1)[1].split(":")
    proxy = TcpProxy(host, int(port))
    try:
        prefix = "outage"
        storage = s3_config_lines(proxy.url, s3_env, bucket, prefix)
        wf_id = _submit(tmp_path, hpc_home, CHAIN.format(storage=storage))
        deadline = time.time() + 120
        while _steps(hpc_home, tmp_path, wf_id).get("s0", {}).get("phase") != "Succeeded":
            assert time.time() < deadline, _steps(hpc_home, tmp_path, wf_id)
            time.sleep(0.2)
        proxy.cut()
        cut_at = time.time()
        time.sleep(20)
        during = _steps(hpc_home, tmp_path, wf_id)
        proxy.restore()
        assert proxy.refused > 0, "nothing tried to reach S3 during the cut"
        assert all(s["phase"] != "Failed" for s in during.values()), during
        data = _wait(hpc_home, tmp_path, wf_id, timeout=300)
        assert data["phase"] == "Succeeded", run_cli(["steps", wf_id], hpc_home, tmp_path).stdout
        assert time.time() - cut_at > 20
        for i in range(6):
            got = download_output(tmp_path, hpc_home, wf_id, f"s{i}", "out", storage)
            content = next(got.rglob("chain.bin")).read_bytes()
            assert content == b"".join(bytes([j]) * (2 << 20) for j in range(i + 1)), i
    finally:
        proxy.close()


def test_over_ssh_the_daemon_relays_or_the_job_says_what_it_lacks(
        s3_env, ssh_env, slurm_env, bucket, tmp_path: Path, hpc_home: Path) -> None:
    """A cluster reached over SSH whose jobs' Python has no boto3 (hpctest's /usr/bin/python3):
    with ``storage_access = "relay"`` the daemon carries the artifacts between S3 and the
    step directories; with the default (direct) the step fails saying what to do."""
    from tests.integration.test_slurm_ssh import remote_config

    prefix = f"ssh-{uuid.uuid4().hex[:6]}"
    remote_config(hpc_home, ssh_env, "relayed")
    config = hpc_home / "config.toml"
    machine = config.read_text()
    config.write_text(
        machine + 'storage_access = "relay"\n'
        + machine.replace("[machines.relayed]", "[machines.direct]")
        + f'[storage]\nkind = "s3"\nbucket = "{bucket}"\nprefix = "{prefix}"\n'
        f'endpoint = "{s3_env["HPCFLOW_TEST_S3_ENDPOINT"]}"\n'
        f'access_key = "{s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}"\n')
    config.chmod(0o600)

    def script(machine: str) -> str:
        return PIPELINE.format(
            executor_import=", SlurmExecutor",
            executor=f', executor=SlurmExecutor(machine="{machine}", partition="debug")',
            storage="", kind=machine)

    relayed = _submit(tmp_path, hpc_home, script("relayed"))
    direct = _submit(tmp_path, hpc_home, script("direct"))
    check_pipeline(hpc_home, tmp_path, relayed, s3_env, bucket, prefix, "")
    failed = _wait(hpc_home, tmp_path, direct, timeout=240)
    assert failed["phase"] == "Failed"
    reason = _steps(hpc_home, tmp_path, direct)["grow"]["reason"]
    assert "S3 storage needs boto3" in reason and 'storage_access = "relay"' in reason, reason
    assert_no_secret_in(hpc_home, s3_env["HPCFLOW_TEST_S3_SECRET_KEY"], skip=config)


HOSTILE = '''
from pathlib import Path
from hpcflow import Step, Workflow, s3_config
from hpcflow.artifacts import StoredArtifact
from hpcflow.python import OP, Artifact, PythonOPTemplate
{storage}

@OP.function
def read(data: Artifact(Path)) -> {{"size": int}}:
    return {{"size": len(Path(data).read_bytes())}}

wf = Workflow("hostile-{name}")
bad = StoredArtifact({{"parts": [{{"key": "{key}", "archive": "tar"}}], "items": "x"}})
wf.add(Step("read", PythonOPTemplate(read), artifacts={{"data": bad}}))
wf.submit()
'''


def test_hostile_archives_in_the_bucket_are_refused(s3_env, bucket, tmp_path: Path,
                                                    hpc_home: Path) -> None:
    """Archives someone else put into the bucket, with a member ``../escape`` and one at an
    absolute path: the step that takes them as input fails saying why, and nothing is
    written outside its artifact directory."""
    import io
    import tarfile

    storage = s3_config_lines(s3_env["HPCFLOW_TEST_S3_ENDPOINT"], s3_env, bucket, "evil")
    boto = s3_boto(s3_env)
    escape = f"escape-{uuid.uuid4().hex[:6]}"
    for name, member in [("dotdot", f"../../../../../../tmp/{escape}"),
                         ("absolute", f"/tmp/{escape}")]:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(member)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        boto.put_object(Bucket=bucket, Key=f"evil/{name}.tgz", Body=raw.getvalue())
        wf_id = _submit(tmp_path, hpc_home, HOSTILE.format(storage=storage, name=name,
                                                             key=f"{name}.tgz"))
        assert _wait(hpc_home, tmp_path, wf_id)["phase"] == "Failed"
        reason = _steps(hpc_home, tmp_path, wf_id)["read"]["reason"]
        assert f"refusing to extract {member!r}" in reason, reason
        assert "absolute paths and '..' are not allowed" in reason
    assert not Path(f"/tmp/{escape}").exists()


REUSED = '''
import os, time
from pathlib import Path
from hpcflow import Step, Workflow, s3_config
from hpcflow.python import OP, Artifact, PythonOPTemplate
{storage}

@OP.function
def make(text: str, gate: str) -> {{"out": Artifact(Path, archive=None)}}:
    while not os.path.exists(gate):
        time.sleep(0.05)
    Path("made/sub").mkdir(parents=True)
    Path("made/sub/a.txt").write_text(text)
    return {{"out": Path("made")}}

wf = Workflow("s3-reuse")
wf.add(Step("kept", PythonOPTemplate(make), parameters={{"text": "kept", "gate": "/"}},
            key="kept"))
wf.add(Step("redo", PythonOPTemplate(make), parameters={{"text": "redo", "gate": "{gate}"}}))
wf.submit()
'''


def test_gc_keeps_the_bucket_objects_a_kept_workflow_reuses(s3_env, bucket, tmp_path: Path,
                                                          hpc_home: Path) -> None:
    prefix = f"reuse-{uuid.uuid4().hex[:6]}"
    storage = s3_config_lines(s3_env["HPCFLOW_TEST_S3_ENDPOINT"], s3_env, bucket, prefix)
    gate = tmp_path / "gate"
    gate.touch()
    first = _submit(tmp_path, hpc_home, REUSED.format(storage=storage, gate=gate))
    assert _wait(hpc_home, tmp_path, first)["phase"] == "Succeeded"
    ours = f"{prefix}/wf/{first}/"
    made = [k for k in bucket_keys(s3_env, bucket) if k.startswith(ours)]
    assert len(made) == 2 and all(k.endswith("/made/sub/a.txt") for k in made), made
    gate.unlink()
    again = run_cli(["resubmit", first, "--reuse-succeeded"], hpc_home, tmp_path)
    assert again.returncode == 0, again.stderr
    second = again.stdout.strip()
    # the second run is live (redo waits for the gate): gc prunes only the first, and keeps
    # the object the second reuses (the unarchived artifact's files, under its key)
    pruned = run_cli(["gc", "--older-than", "0s", "--json"], hpc_home, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert [w["id"] for w in json.loads(pruned.stdout)["workflows"]] == [first]
    reused = _steps(hpc_home, tmp_path, second)["kept"]["outputs"]["artifacts"]["out"]
    reused_key = reused["parts"][0]["key"]
    assert reused_key.startswith(f"wf/{first}/")
    left = [k for k in bucket_keys(s3_env, bucket) if k.startswith(ours)]
    assert left == [f"{prefix}/{reused_key}/made/sub/a.txt"], left
    gate.touch()
    assert _wait(hpc_home, tmp_path, second)["phase"] == "Succeeded"
    got = download_output(tmp_path, hpc_home, second, "kept", "out", storage)
    assert [p.read_text() for p in got.rglob("a.txt")] == ["kept"]
    # pruning the second releases it
    pruned = run_cli(["gc", "--older-than", "0s", "--json"], hpc_home, tmp_path)
    assert [w["id"] for w in json.loads(pruned.stdout)["workflows"]] == [second]
    assert not [k for k in bucket_keys(s3_env, bucket) if f"{prefix}/wf/" in k]
