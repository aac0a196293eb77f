"""``hpcflow doctor`` against the real sshd, Slurm and Grid Engine: a good machine passes
every check, and each broken one fails at its first problem with its real cause and what to
do about it. Without a config file it checks this machine's schedulers whose commands are on
PATH (Grid Engine's ``qstat`` is not taken for PBS's); ``[dispatchers.*]`` machines are
checked as machines are."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.test_dispatcher import _ssh_dispatcher_config
from tests.integration.test_slurm_ssh import remote_config


def slurm_version() -> str:
    """What this machine's ``sbatch --version`` says (``slurm-wlm 22.05.8``)."""
    return subprocess.run(["sbatch", "--version"], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def sge_version() -> str:
    """The line of ``qstat -help`` that names Grid Engine (``SGE 8.1.9``)."""
    return subprocess.run(["qstat", "-help"], capture_output=True, text=True,
                          timeout=60).stdout.splitlines()[0].strip()


def lines_of(stdout: str, section: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(f"{section}:")]


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
    assert [line for line in lines if line.startswith("good: ok  limits: ")] == [
        "good: ok  limits: account hpcflow: no limits; QOS normal: no limits; "
        "MaxArraySize=1001, MaxJobCount=100000"]  # hpctest's, read over ssh
    assert [line for line in lines if line.startswith("good:") and " limits: " not in line] == [
        "good: ok  connection (host key verified)",
        f"good: ok  slurm commands ({slurm_version()})",
        "good: ok  slurmctld answers (a query for jobs)",
        "good: ok  work root /home/hpctest/hpcflow-runs writable",
        f"good: ok  /usr/bin/python3 is Python {sys.version_info[0]}.{sys.version_info[1]}",
        "good: ok  hpcflow runner imports (shipped)"]
    stranger = lines_of(done.stdout, "stranger")[-1]
    assert "FAIL" in stranger and "ssh-keyscan -p 2222 127.0.0.1 >>" in stranger
    noroot = lines_of(done.stdout, "noroot")[-1]
    assert "FAIL cannot write in work_root /root/not-for-hpctest" in noroot
    oldpy = lines_of(done.stdout, "oldpy")[-1]
    assert "FAIL '/usr/bin/no-such-python' does not run" in oldpy
    # what passed before the failure is shown: it stopped at the work root
    assert [line for line in lines_of(done.stdout, "noroot")[:-1]
            if " limits: " not in line] == [
        "noroot: ok  connection (host key verified)",
        f"noroot: ok  slurm commands ({slurm_version()})",
        "noroot: ok  slurmctld answers (a query for jobs)"]
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


def test_without_a_config_file_this_machines_schedulers_are_checked(
        tmp_path: Path, sge_env: dict, slurm_env: dict, monkeypatch: pytest.MonkeyPatch):
    """The real qstat here is Grid Engine's: it is checked as sge, and PBS is said to be not
    looked at (not "install PBS"); LSF, absent, is not looked at either."""
    home = tmp_path / "home"
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert lines_of(out, "schedulers") == [
        f"schedulers: found on PATH sge ({shutil.which('qstat')}), slurm "
        f"({shutil.which('sbatch')}); not looked at: lsf (no bjobs on PATH), pbs (the qstat on "
        f"PATH is Grid Engine's: {sge_version()})"]
    assert lines_of(out, "sge")[:3] == [
        f"sge: ok  sge commands ({sge_version()})",
        "sge: ok  sge_qmaster answers (a query for jobs)",
        f"sge: ok  work root {home / 'runs'} writable"]
    assert lines_of(out, "slurm")[:2] == [f"slurm: ok  slurm commands ({slurm_version()})",
                                          "slurm: ok  slurmctld answers (a query for jobs)"]
    assert not lines_of(out, "pbs") and not lines_of(out, "lsf")
    assert lines_of(out, "local")[-1] == "local: ok  hpcflow runner imports"

    # the real sbatch without its slurm.conf: Slurm's client has no configuration, which
    # is not "install Slurm"
    missing = tmp_path / "no-such-dir" / "slurm.conf"
    monkeypatch.setenv("SLURM_CONF", str(missing))
    broken = run_cli(["doctor"], home, tmp_path)
    assert broken.returncode == 1
    [line] = lines_of(broken.stdout, "slurm")
    assert line.startswith(
        f"slurm: FAIL Slurm's client on slurm (this machine) has no configuration: {missing} "
        f"does not exist ('sbatch --version': sbatch: error: s_p_parse_file: cannot stat file "
        f"{missing}"), line
    assert line.endswith("): set SLURM_CONF to the cluster's slurm.conf (or install it at "
                         "that path), for non-interactive shells too (e.g. in ~/.bashrc "
                         "before its interactive-only part)"), line
    assert "install or load" not in line
    assert lines_of(broken.stdout, "sge")[-1] == "sge: ok  hpcflow runner imports"


def test_a_pbs_machine_whose_qstat_is_grid_engines(tmp_path: Path, sge_env: dict):
    """A machine (and a dispatcher machine) that says PBS where the qstat is Grid Engine's
    is told which scheduler its commands belong to, and the setting to change."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(
        '[machines.grid]\nscheduler = "pbs"\n'
        '[dispatchers.dp-grid.machine]\nbatch_type = "PBS"\ncontext_type = "LocalContext"\n')
    (home / "config.toml").chmod(0o600)
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 1
    theirs = f"the qstat on grid (this machine) is Grid Engine's ({sge_version()}), not PBS's"
    assert lines_of(done.stdout, "grid") == [
        f"grid: FAIL {theirs}: if the cluster runs Grid Engine, set machines.grid.scheduler = "
        "\"sge\"; else put PBS's qstat first on PATH, for non-interactive shells too (e.g. in "
        "~/.bashrc before its interactive-only part)"]
    dispatcher = lines_of(done.stdout, "dp-grid")
    assert dispatcher[-1] == (
        f"dp-grid: FAIL {theirs.replace('grid (', 'dp-grid (')}: if the cluster runs Grid "
        "Engine, set dispatchers.dp-grid.machine.batch_type = \"SGE\"; else put PBS's qstat "
        "first on PATH, for non-interactive shells too (e.g. in ~/.bashrc before its "
        "interactive-only part)"), dispatcher
    # the machines of the config file are checked, not this machine's other schedulers
    assert not lines_of(done.stdout, "schedulers") and not lines_of(done.stdout, "sge")


def test_doctor_checks_dispatcher_machines(tmp_path: Path, ssh_env: dict, slurm_env: dict):
    """A ``[dispatchers.NAME]`` over the real sshd to the real Slurm: every check of a
    machine, its runner shipped only for the check (removed again); a host key that is not
    trusted fails in one line with the command that trusts it."""
    user = ssh_env["HPCFLOW_TEST_SSH_USER"]
    home = tmp_path / "home"
    known_hosts = ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]
    _ssh_dispatcher_config(home, ssh_env, known_hosts)
    (tmp_path / "empty_known_hosts").write_text("")
    config = home / "config.toml"
    good = config.read_text()
    config.write_text(good + good.replace("dispatchers.cluster", "dispatchers.stranger").replace(
        known_hosts, str(tmp_path / "empty_known_hosts")))
    config.chmod(0o600)
    done = run_cli(["doctor"], home, tmp_path)
    assert done.returncode == 1
    cluster = [line for line in lines_of(done.stdout, "cluster") if " limits: " not in line]
    assert cluster[0].startswith("cluster: ok  dpdispatcher "), cluster
    assert cluster[1:] == [
        "cluster: ok  connection (host key verified)",
        f"cluster: ok  slurm commands ({slurm_version()})",
        "cluster: ok  slurmctld answers (a query for jobs)",
        f"cluster: ok  work root /home/{user}/hpcflow-dispatcher writable",
        f"cluster: ok  /usr/bin/python3 is Python {sys.version_info[0]}.{sys.version_info[1]}",
        "cluster: ok  hpcflow runner imports (shipped)"]
    stranger = lines_of(done.stdout, "stranger")
    assert len(stranger) == 2 and stranger[1].startswith("stranger: FAIL cannot reach "), \
        stranger
    assert "ssh-keyscan -p 2222 127.0.0.1 >>" in stranger[1]
    assert run_cli(["doctor", "cluster"], home, tmp_path).returncode == 0
    from hpcflow.connectors.transports.ssh import SSHTarget, SSHTransport

    ssh = SSHTransport(SSHTarget(
        host=ssh_env["HPCFLOW_TEST_SSH_HOST"], port=int(ssh_env["HPCFLOW_TEST_SSH_PORT"]),
        user=user, key_filename=ssh_env["HPCFLOW_TEST_SSH_KEY"],
        known_hosts=ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]))
    try:
        left = ssh.list_files(f"/home/{user}/hpcflow-dispatcher")
        assert not [path for path in left if "/.hpcflow-doctor-" in path], left
    finally:
        ssh.close()


def test_doctor_reports_the_users_slurm_limits(tmp_path: Path, slurm_accounting_env: dict):
    """The association and QOS limits sacctmgr shows for the user, and Slurm's MaxArraySize,
    read from the real slurmdbd: an account and a QOS made for this test (limits are not
    enforced on the test cluster: nobody else's jobs feel them), removed afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[machines.hpc]\nscheduler = 'slurm'\n")

    def sacctmgr(*args: str) -> None:
        subprocess.run(["sacctmgr", "-i", *args], capture_output=True, text=True, check=True)

    sacctmgr("add", "qos", "hfdoctorqos", "MaxSubmitJobsPerUser=7", "MaxWall=1:00:00")
    try:
        sacctmgr("add", "account", "hfdoctor", "cluster=localhost")
        sacctmgr("add", "user", "root", "account=hfdoctor", "cluster=localhost",
                 "qos=normal,hfdoctorqos", "MaxSubmitJobs=42")
        done = run_cli(["doctor", "hpc"], home, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        [line] = [line for line in done.stdout.splitlines() if " limits: " in line]
        assert line.startswith("hpc: ok  limits: "), line
        assert "account hfdoctor: MaxSubmit=42" in line, line
        assert "QOS hfdoctorqos: MaxSubmitPU=7, MaxWall=01:00:00" in line, line
        assert "MaxArraySize=1001" in line, line
    finally:
        subprocess.run(["sacctmgr", "-i", "delete", "user", "root", "account=hfdoctor"],
                       capture_output=True)
        subprocess.run(["sacctmgr", "-i", "delete", "account", "hfdoctor"], capture_output=True)
        subprocess.run(["sacctmgr", "-i", "delete", "qos", "hfdoctorqos"], capture_output=True)
