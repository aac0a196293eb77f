"""Steps as Slurm jobs submitted over SSH (the real sshd of tests/services, as user hpctest,
with the real one-node Slurm behind it), as from a workstation: the machine does not share
the daemon's files, so inputs and outputs are relayed and hpcflow's runner is shipped as a
zip (the machine's own /usr/bin/python3 runs it; hpcflow is not installed there)."""

import json
import re
from pathlib import Path

from tests.conftest import integrity_ok, run_cli, wait_progressing
from tests.integration.flows import check_pipeline
from tests.integration.test_slurm_local import FAILING, PIPELINE, _steps, _submit, _wait


def remote_config(home: Path, ssh_env: dict, name: str = "remote") -> None:
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "config.toml").write_text(f"""
[machines.{name}]
scheduler = "slurm"
host = "{ssh_env['HPCFLOW_TEST_SSH_HOST']}"
port = {ssh_env['HPCFLOW_TEST_SSH_PORT']}
user = "{ssh_env['HPCFLOW_TEST_SSH_USER']}"
key_filename = "{ssh_env['HPCFLOW_TEST_SSH_KEY']}"
known_hosts = "{ssh_env['HPCFLOW_TEST_SSH_KNOWN_HOSTS']}"
work_root = "/home/{ssh_env['HPCFLOW_TEST_SSH_USER']}/hpcflow-runs"
python = "/usr/bin/python3"
min_poll_interval = 0.5
max_poll_interval = 2
""")


def over_ssh(script: str) -> str:
    return script.replace("SlurmExecutor(", 'SlurmExecutor(machine="remote", ')


def test_a_workflow_over_ssh(tmp_path: Path, ssh_env: dict, slurm_env: dict):
    home = tmp_path / "home"
    remote_config(home, ssh_env)
    wf_id = _submit(tmp_path, home, over_ssh(PIPELINE))
    failing = _submit(tmp_path, home, over_ssh(FAILING))
    try:
        final = _wait(home, tmp_path, wf_id)
        assert final["phase"] == "Succeeded", final
        # each step ran in a Slurm job, artifacts went in and out (the shell template's output
        # downloads as the user would), the loop's 20 squares
        check_pipeline(home, tmp_path, wf_id)
        # the jobs ran as hpctest, in its work root, not in the daemon's home
        assert not (home / "runs").exists()
        text = Path(slurm_env["HPCFLOW_TEST_SLURM_JOBCOMP"]).read_text()
        users = set(re.findall(rf"UserId=(\w+)\(\d+\) GroupId=\S+ Name=hpcflow-{wf_id}-", text))
        assert users == {"hpctest"}, users
        # the output artifact came back into the daemon's storage
        assert list((home / "artifacts" / "wf" / wf_id).rglob("*"))
        assert _wait(home, tmp_path, failing)["phase"] == "Failed"
        broken = _steps(home, tmp_path, failing)["broken"]
        assert broken["reason"] == "ValueError: cannot handle 7"
        assert "ValueError: cannot handle 7" in (broken["log_tail"] or "")
        logs = run_cli(["logs", failing, "broken", "--json"], home, tmp_path)
        shown = json.loads(logs.stdout)  # read over SSH from the job's own output file
        assert shown["path"].startswith("remote:/home/hpctest/hpcflow-runs/")
        assert "ValueError: cannot handle 7" in shown["log"]
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def test_an_unknown_host_key_fails_the_steps_with_how_to_trust_it(tmp_path: Path,
                                                                  ssh_env: dict):
    home = tmp_path / "home"
    remote_config(home, {**ssh_env, "HPCFLOW_TEST_SSH_KNOWN_HOSTS": str(tmp_path / "empty")})
    wf_id = _submit(tmp_path, home, over_ssh(FAILING))
    try:
        assert _wait(home, tmp_path, wf_id, timeout=60)["phase"] == "Failed"
        reason = _steps(home, tmp_path, wf_id)["broken"]["reason"]
        assert "is not in" in reason and "ssh-keyscan -p 2222 127.0.0.1 >>" in reason, reason
        log = (home / "logs" / "daemon.log").read_text()
        assert "engine cycle failed" not in log  # refused cleanly, not through an error
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


SLEEPY_LOOP = '''
from hpcflow import Step, Workflow, SlurmExecutor, argo_range
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def nap(x: int) -> {"y": int}:
    import os, time
    # live until the test opens the gate (sshd restarted), however slow the machine
    deadline = time.time() + 600
    while not os.path.exists(GATE) and time.time() < deadline:
        time.sleep(0.2)
    return {"y": x + 100}

wf = Workflow("through-restart")
wf.add(Step("nap", PythonOPTemplate(nap), parameters={"x": "{{item}}"},
            with_param=argo_range(20),
            executor=SlurmExecutor(machine="remote", partition="debug", time="0:10:00")))
wf.submit()
'''


def test_sshd_restarts_while_twenty_jobs_are_live(tmp_path: Path, ssh_env: dict,
                                                  slurm_env: dict):
    import os
    import subprocess

    from tests.conftest import REPO

    home = tmp_path / "home"
    remote_config(home, ssh_env)
    state = Path(ssh_env["HPCFLOW_TEST_SSH_KNOWN_HOSTS"]).parent
    # where the jobs (user hpctest) can see it: tmp_path is root's only
    gate = Path(f"/tmp/hpcflow-sshd-restart-gate-{os.getpid()}")
    gate.unlink(missing_ok=True)
    wf_id = _submit(tmp_path, home, SLEEPY_LOOP.replace("GATE", repr(str(gate))))
    services = REPO / "tests" / "services"
    try:
        wait_progressing(lambda: _jobs_in_slurm(wf_id), lambda n: n == 20,
                         what="twenty live jobs")
        # sshd goes away with every open session (the daemon's connection drops) ...
        subprocess.run(["bash", str(services / "stop-sshd.sh"), str(state)], check=True,
                       capture_output=True)
        subprocess.run(["pkill", "-f", "sshd: hpctest"], capture_output=True)
        wait_progressing((home / "logs" / "daemon.log").read_text,  # ... until the daemon
                         lambda log: "polling remote failed" in log,  # polled and failed ...
                         what="a failed poll while sshd is down")
        subprocess.run(["bash", str(services / "start-sshd.sh"), str(state)], check=True,
                       capture_output=True,
                       env=dict(os.environ, SSHD_SETENV=f"SLURM_CONF={slurm_env['SLURM_CONF']}"))
        gate.touch()
        final = _wait(home, tmp_path, wf_id, timeout=180)  # ... and reconnects
        assert final["phase"] == "Succeeded", final
        assert final["steps"] == {"Succeeded": 20}
        steps = _steps(home, tmp_path, wf_id)
        assert steps["nap"]["outputs"]["parameters"]["y"] == [i + 100 for i in range(20)]
        log = (home / "logs" / "daemon.log").read_text()
        assert "polling remote failed" in log and "reconnected to 127.0.0.1" in log
    finally:
        gate.touch()  # no job waits on after the test (left in place for queued ones)
        run_cli(["daemon", "stop"], home, tmp_path)


def _jobs_in_slurm(wf_id: str) -> int:
    """The workflow's jobs Slurm has, queued or running (they run as the ssh user)."""
    import subprocess

    out = subprocess.run(["squeue", "-h", "-t", "PD,R,CF", "-o", "%j"], capture_output=True,
                         text=True, timeout=60).stdout
    return sum(1 for line in out.splitlines() if line.startswith(f"hpcflow-{wf_id}-"))


TICKING = '''
import sys, time
from pathlib import Path
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

GO = sys.argv[1]

@OP.function
def ticks(x: int) -> {"y": int}:
    n = 0
    while not Path(GO).exists():
        n += 1
        print(f"tick {n}", flush=True)
        time.sleep(0.3)
    print("done", flush=True)
    return {"y": x}

wf = Workflow("ticking")
wf.add(Step("ticks", PythonOPTemplate(ticks), parameters={"x": 1},
            executor=SlurmExecutor(machine="remote", partition="debug", time="0:10:00")))
wf.submit()
print(wf.id)
'''


def test_logs_follow_a_job_running_over_ssh(tmp_path: Path, ssh_env: dict, slurm_env: dict):
    """``hpcflow logs WF STEP -f`` prints the remote job's output file as it grows (read over
    SSH), until the step ends."""
    import os
    import subprocess
    import sys

    from tests.conftest import wait_until

    home = tmp_path / "home"
    remote_config(home, ssh_env)
    go = Path("/tmp") / f"hpcflow-follow-go-{os.getpid()}"  # the job's user can see it
    go.unlink(missing_ok=True)
    (tmp_path / "wf.py").write_text(TICKING)
    wf_id = run_cli(["submit", "-q", "wf.py", str(go)], home, tmp_path).stdout.strip()
    shown = tmp_path / "followed.txt"
    try:
        with open(shown, "w") as out:
            follower = subprocess.Popen(
                [sys.executable, "-m", "hpcflow.cli.main", "logs", wf_id, "ticks", "-f",
                 "--interval", "0.5"], cwd=tmp_path, env=dict(os.environ, HPCFLOW_HOME=str(home)),
                stdout=out, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: "tick 2" in shown.read_text(), "the remote job's lines, followed",
                   timeout=300)
        assert _steps(home, tmp_path, wf_id)["ticks"]["phase"] == "Running"  # still running
        go.touch()
        _, err = follower.communicate(timeout=300)
        assert follower.returncode == 0, err
        lines = shown.read_text().splitlines()
        assert lines[-1] == "done" and lines[0] == "tick 1", lines
        numbers = [int(line.split()[1]) for line in lines[:-1]]
        assert numbers == list(range(1, len(numbers) + 1))  # nothing lost or repeated
    finally:
        go.touch()
        run_cli(["daemon", "stop"], home, tmp_path)
        go.unlink(missing_ok=True)
