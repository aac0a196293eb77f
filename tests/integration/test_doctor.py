"""``hpcflow doctor`` against the real sshd and Slurm: a good machine passes every check,
and each broken one fails at its first problem with what to do about it."""

import sys
from pathlib import Path

from tests.conftest import run_cli
from tests.integration.test_slurm_ssh import remote_config


def test_doctor_says_what_is_wrong_and_how_to_fix_it(tmp_path: Path, ssh_env: dict,
                                                     slurm_env: dict):
    home = tmp_path / "home"
    remote_config(home, ssh_env, "good")
    config = home / "config.toml"
    good = config.read_text()
    config.write_text(
        good
        + good.replace("[machines.good]", "[machines.stranger]").replace(
            ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"], str(tmp_path / "empty_known_hosts"))
        + good.replace("[machines.good]", "[machines.noroot]").replace(
            "/home/hpctest/hpcflow-runs", "/root/not-for-hpctest")
        + good.replace("[machines.good]", "[machines.oldpy]").replace(
            'python = "/usr/bin/python3"', 'python = "/usr/bin/no-such-python"'))
    done = run_cli(["doctor"], home, tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert [line for line in lines if line.startswith("good:")] == [
        "good: ok  connection (host key verified)", "good: ok  slurm commands",
        "good: ok  work root /home/hpctest/hpcflow-runs writable",
        f"good: ok  /usr/bin/python3 is Python {sys.version_info[0]}.{sys.version_info[1]}",
        "good: ok  hpcflow runner imports (shipped)"]
    stranger = next(line for line in lines if line.startswith("stranger:"))
    assert "FAIL" in stranger and "ssh-keyscan -p 2222 127.0.0.1 >>" in stranger
    noroot = next(line for line in lines if line.startswith("noroot:"))
    assert "FAIL cannot write in work_root /root/not-for-hpctest" in noroot
    oldpy = next(line for line in lines if line.startswith("oldpy:"))
    assert "FAIL '/usr/bin/no-such-python' does not run" in oldpy
    assert run_cli(["doctor", "good"], home, tmp_path).returncode == 0
    missing = run_cli(["doctor", "nope"], home, tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("hpcflow: no machine 'nope'")


def _s3_config(home: Path, s3_env: dict, bucket: str, secret: str | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        f'[storage]\nkind = "s3"\nbucket = "{bucket}"\n'
        f'endpoint = "{s3_env["HPCFLOW_TEST_S3_ENDPOINT"]}"\nretry_seconds = 5\n'
        f'access_key = "{s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"]}"\n'
        f'secret_key = "{secret or s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}"\n')
    config.chmod(0o600)


def _storage_lines(home: Path, cwd: Path, faketime: str | None = None) -> list[str]:
    import os
    import subprocess

    argv = [sys.executable, "-m", "hpcflow.cli.main", "doctor", "--storage"]
    if faketime:
        argv = ["faketime", "-f", faketime, *argv]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HPCFLOW_HOME=str(home)))
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("storage:")]


def test_doctor_checks_the_s3_bucket(tmp_path: Path, s3_env: dict, bucket: str):
    """Against the real RGW: reachable, writable and the clock; a wrong key, a missing bucket
    and a clock 20 minutes off (libfaketime) each fail in one line that says what to do."""
    from tests.integration.conftest import s3_boto

    home = tmp_path / "home"
    _s3_config(home, s3_env, bucket)
    lines = _storage_lines(home, tmp_path)
    assert lines[0] == f"storage: ok  S3StorageClient(s3://{bucket}/ at " \
                       f"{s3_env['HPCFLOW_TEST_S3_ENDPOINT']}) reachable"
    assert lines[1] == "storage: ok  writable (an object written, read back and deleted)"
    assert lines[2].startswith("storage: ok  clock within ") and "warning" not in lines[2]
    # the probe object is gone again
    left = s3_boto(s3_env).list_objects_v2(Bucket=bucket, Prefix=".hpcflow/doctor")
    assert "Contents" not in left
    late = _storage_lines(home, tmp_path, faketime="+2m")
    assert late[2].startswith("storage: ok  clock within 1") and "warning" in late[2], late
    skewed = _storage_lines(home, tmp_path, faketime="+20m")
    assert skewed and "FAIL" in skewed[0] and "clock is off by more than 15 minutes" in skewed[0]

    _s3_config(home, s3_env, bucket, secret="wrong-secret")
    refused = _storage_lines(home, tmp_path)
    assert len(refused) == 1 and refused[0].startswith("storage: FAIL S3 refused the credentials")
    assert "wrong-secret" not in refused[0]
    _s3_config(home, s3_env, f"{bucket}-absent")
    missing = _storage_lines(home, tmp_path)
    assert len(missing) == 1 and "does not exist: create it" in missing[0]
