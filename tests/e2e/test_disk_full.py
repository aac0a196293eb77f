"""A full disk: the step that fills it fails saying "no space left on device" and where; the
daemon keeps running, says so in its log and in `daemon status`, and carries on by itself
once space returns. Large artifacts are staged under $HPCFLOW_HOME, not in a small /tmp.

The small disks are tmpfs mounts made by the test (root only), unmounted at teardown."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpcflow.daemon.engine import engine_pid
from tests.conftest import run_cli, stop_engine, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="mounting a small tmpfs (mount -t tmpfs) needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """``small_disk(name, size)``: a tmpfs of ``size`` mounted at ``tmp_path/name``."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(path)], check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        stop_engine(path)
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # a step still in it


FILL = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def fill(mb: int) -> {"n": int}:
    with open("big.bin", "wb") as f:
        for _ in range(mb):
            f.write(b"x" * (1 << 20))
    return {"n": mb}

wf = Workflow("fill")
wf.add(Step("fill", PythonOPTemplate(fill), parameters={"mb": MB}))
wf.submit()
'''


def _submit(tmp_path: Path, home: Path, text: str, env: dict[str, str] | None = None) -> str:
    script = tmp_path / f"wf{len(list(tmp_path.glob('wf*.py')))}.py"
    script.write_text(text)
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HPCFLOW_HOME=str(home),
                                   HPCFLOW_ENGINE_IDLE_EXIT="300", **(env or {})))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _until(what: str, check: Callable[[], object], home: Path, timeout: float = 90) -> object:
    """Wait for ``check()`` to be true, waking the daemon meanwhile (an idle one sleeps)."""

    def wake() -> None:
        with contextlib.suppress(OSError):  # an empty file: an inode, no block
            (home / "wake" / f"test-{time.time_ns()}").touch()

    return wait_until(check, what, timeout, between=wake)


def _fill_up(folder: Path) -> Path:
    """Write into ``folder`` until its filesystem is full."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)
    with contextlib.suppress(OSError), open(filler, "ab", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)
    return filler


def _status(home: Path, cwd: Path) -> dict:
    return json.loads(run_cli(["daemon", "status", "--json"], home, cwd).stdout)


def test_a_full_disk_fails_the_step_saying_where_and_the_daemon_goes_on(small_disk, tmp_path):
    home = small_disk("home", "8m")
    wf_id = _submit(tmp_path, home, FILL.replace("MB", "64"))
    pid = engine_pid(home)
    assert pid
    big = _until("step filling the disk", lambda: next(home.rglob("big.bin"), None), home)
    assert isinstance(big, Path)
    # whatever the failed step left free, the disk is full now
    filler = _until("full disk", lambda: _fill_up(home), home)
    problem = _until("problem in daemon status",
                     lambda: _status(home, tmp_path).get("problem"), home)
    assert "no space left on device" in str(problem) and str(home) in str(problem)
    assert engine_pid(home) == pid  # still serving
    shown = run_cli(["daemon", "status"], home, tmp_path)
    assert shown.returncode == 0 and "problem since" in shown.stdout, shown.stdout
    log = (home / "logs" / "daemon.log").read_text()
    assert "no space left on device" in log and "Traceback" not in log, log

    # space returns (the operator cleans up): the daemon carries on by itself
    Path(str(filler)).unlink()
    big.unlink()
    _until("recovery", lambda: not _status(home, tmp_path).get("problem"), home)
    assert "writing works again" in (home / "logs" / "daemon.log").read_text()
    assert engine_pid(home) == pid

    def finished() -> dict | None:
        data = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)
        return data if data["phase"] not in ("Pending", "Running") else None

    ended = _until("end of the workflow", finished, home)
    assert isinstance(ended, dict) and ended["phase"] == "Failed"
    step = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)[-1]
    assert step["name"] == "fill" and step["phase"] == "Failed", step
    # what, and where: the step's working directory and its filesystem
    assert step["reason"].startswith(f"no space left on device: {big.parent} "), step
    assert f"(filesystem {home}: " in step["reason"], step
    logged = run_cli(["logs", wf_id, "fill"], home, tmp_path)
    assert "No space left on device" in logged.stdout, logged.stdout + logged.stderr

    # the daemon serves new work as before, and has its reserve back
    again = _submit(tmp_path, home, FILL.replace("MB", "1"))
    assert _until("second workflow", lambda: json.loads(run_cli(
        ["status", again, "--json"], home, tmp_path).stdout)["phase"] == "Succeeded", home)
    assert (home / ".space-reserve").stat().st_size == 1 << 20
    run_cli(["daemon", "stop"], home, tmp_path)


ARTIFACTS = '''
import os
from pathlib import Path
from hpcflow import Step, Workflow, upload_artifact
from hpcflow.python import OP, Artifact, PythonOPTemplate

@OP.function
def make() -> {"out": Artifact(Path)}:
    Path("random.bin").write_bytes(os.urandom(3 << 20))
    return {"out": Path("random.bin")}

@OP.function
def size(a: Artifact(Path), b: Artifact(Path)) -> {"n": int}:
    return {"n": a.stat().st_size + b.stat().st_size}

Path("upload.bin").write_bytes(os.urandom(3 << 20))
uploaded = upload_artifact("upload.bin")
wf = Workflow("staged")
made = Step("make", PythonOPTemplate(make))
wf.add(made)
wf.add(Step("size", PythonOPTemplate(size),
            artifacts={"a": made.outputs.artifacts["out"], "b": uploaded}))
wf.submit()
'''


def test_artifacts_are_staged_under_the_home_not_in_a_small_tmp(small_disk, tmp_path):
    """TMPDIR is a 1 MiB disk: 3 MiB archives (uploaded by the script, made by a step) are
    staged under $HPCFLOW_HOME or the step's directory instead."""
    small_tmp = small_disk("tmp", "1m")
    home = tmp_path / "home"
    wf_id = _submit(tmp_path, home, ARTIFACTS, env={"TMPDIR": str(small_tmp)})
    try:
        def finished() -> dict | None:
            data = json.loads(run_cli(["status", wf_id, "--json"], home, tmp_path).stdout)
            return data if data["phase"] not in ("Pending", "Running") else None

        data = _until("end of the workflow", finished, home)
        steps = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp_path).stdout)
        assert isinstance(data, dict) and data["phase"] == "Succeeded", steps
        sized = next(s for s in steps if s["name"] == "size")
        assert sized["outputs"]["parameters"]["n"] == 6 << 20
        assert not list((home / "tmp").iterdir())  # nothing left behind
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_a_step_process_that_died_on_a_full_disk_is_said_to_have(small_disk):
    """A runner that could not even start its step (its claim taken, nothing more written)
    on a full disk: the step's reason says the disk is full, and where."""
    from hpcflow.connectors.executors.base import CLAIM_FILE, JobRecord
    from hpcflow.connectors.executors.local import LocalExecutor

    runs = small_disk("runs", "1m")
    step_dir = runs / "wf-x" / "s-1"
    step_dir.mkdir(parents=True)
    (step_dir / CLAIM_FILE).write_text("12345")
    _fill_up(runs)
    executor = LocalExecutor(runs, 1, fork_server=False)
    job = JobRecord(1, "job-1", str(step_dir), "12345", "submitted", time.time())
    status = executor.poll([job])[0]
    assert status.state == "lost" and "died without a result" in str(status.detail)
    assert f"no space left on device: {step_dir} (filesystem {runs}: " in str(status.detail)


RUNNER_UNDER_PRESSURE = '''
import json, sys
from pathlib import Path
import cloudpickle
from hpcflow.daemon import runner
from hpcflow.python import OP

step_dir, filler = Path(sys.argv[1]), sys.argv[2]

@OP.function
def fill() -> {"n": int}:
    with open("big.bin", "wb") as f:
        while True:
            f.write(b"x" * 65536)

(step_dir / "op.pkl").write_bytes(cloudpickle.dumps(fill))
(step_dir / "step.json").write_text(json.dumps({
    "workflow_id": "wf", "step_id": 1, "name": "fill", "key": None, "attempt": 0,
    "template": {"kind": "python", "name": "fill", "inputs": {"parameters": {},
                 "artifacts": {}}, "outputs": {"parameters": {"n": {"type": "int"}},
                 "artifacts": {}}, "python_packages": [], "envs": {}},
    "inputs": {"parameters": {}, "artifacts": {}},
    "storage": {"kind": "local", "root": str(step_dir / "store")},
    "artifact_prefix": "wf/1-0", "archive_mode": "tar", "output_dir": None,
    "slice_group": None, "wake_dir": None, "value_files": True, "python": None}))

printed = runner._print_failure

def print_then_lose_the_space(exc):
    # another account takes every byte the failed step gave back, at the worst moment
    printed(exc)
    with open(filler, "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\\\\0" * 4096)
        except OSError:
            pass

runner._print_failure = print_then_lose_the_space
sys.exit(runner.main([str(step_dir)]))
'''


def test_a_failed_steps_result_is_written_whoever_takes_the_space_it_gave_back(small_disk):
    """The step's result is written into the room its runner kept for it (its temporary
    file, written over in place), not into space that must still be free at the end."""
    disk = small_disk("steps", "2m")
    step_dir = disk / "s-1"
    step_dir.mkdir()
    done = subprocess.run([sys.executable, "-c", RUNNER_UNDER_PRESSURE, str(step_dir),
                           str(disk / "filler")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((step_dir / "result.json").read_text())
    assert result["phase"] == "Failed", result
    assert result["reason"].startswith(f"no space left on device: {step_dir / 'workdir'} ")
    assert (disk / "filler").stat().st_size >= 16384  # it took what the step gave back
    assert not (step_dir / ".result.json.tmp").exists()
