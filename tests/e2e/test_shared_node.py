"""hpcflow as a guest on a shared login node, tried with real accounts: ``hfalice`` runs
hpcflow, ``hfmallory`` is another account on the same machine (see ``tests/accounts.py``).
Every attack here is made by mallory's own processes."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.accounts import REPO, USERS_VENV, loose_entries, shared_machine


@pytest.fixture(scope="module")
def machine():
    with shared_machine() as accounts:
        yield accounts


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode != 0, done.stdout + done.stderr
    err = done.stderr.strip()
    assert "Traceback" not in err, err
    assert err.startswith("hpcflow: ") and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def test_a_home_behind_another_accounts_symlink_is_refused(machine):
    alice, mallory, _ = machine
    target = alice.home / ".hpcflow"
    assert alice.hpcflow(["list"], env=alice.env(HPCFLOW_HOME=str(target))).returncode == 0
    link = f"/tmp/hf-{os.getpid()}-mallory"
    assert mallory.run(["ln", "-s", str(target), link]).returncode == 0
    try:
        for args in (["list"], ["daemon", "start"]):
            done = alice.hpcflow(args, env=alice.env(HPCFLOW_HOME=link))
            _one_line_error(done, f"refusing HPCFLOW_HOME {link}",
                            "is a symlink owned by hfmallory")
        # the SDK refuses it too, before anything is written through the link
        done = alice.python("from hpcflow import settings; settings.home()",
                            env=alice.env(HPCFLOW_HOME=link))
        assert "is a symlink owned by hfmallory" in done.stderr and done.returncode != 0
    finally:
        os.unlink(link)


def test_a_root_symlink_into_another_file_system_is_fine(machine):
    """Sites where $HOME is a root-owned symlink into GPFS keep working; hpcflow keeps
    using the real path."""
    alice, _, _ = machine
    link = f"/tmp/hf-{os.getpid()}-root"
    os.symlink(alice.home, link)
    try:
        done = alice.python("from hpcflow import settings; print(settings.home())",
                            env=alice.env(HPCFLOW_HOME=f"{link}/.hpcflow-gpfs"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(alice.home / ".hpcflow-gpfs")
    finally:
        os.unlink(link)


def test_a_home_under_a_directory_others_can_write_is_refused(machine):
    alice, _, base = machine
    shared = base / "scratch"
    shared.mkdir()
    os.chmod(shared, 0o777)  # world-writable without the sticky bit
    done = alice.hpcflow(["list"], env=alice.env(HPCFLOW_HOME=str(shared / "hf")))
    _one_line_error(done, f"the directory {shared} is writable by group or others",
                    "chmod go-w")
    assert not (shared / "hf").exists()


def test_a_home_of_the_users_own_is_tightened_and_said_so(machine):
    alice, _, _ = machine
    home = alice.home / ".hpcflow-loose"
    assert alice.run(["mkdir", "-m", "755", str(home)]).returncode == 0
    done = alice.hpcflow(["list"], env=alice.env(HPCFLOW_HOME=str(home)))
    assert done.returncode == 0, done.stderr
    assert f"{home} had mode 0755; made it 0700" in done.stderr
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


def test_everything_hpcflow_makes_is_private_whatever_the_umask(machine):
    alice, mallory, _ = machine
    home = alice.home / ".hpcflow-umask"
    work = alice.home / "umask-work"
    assert alice.run(["mkdir", str(work)]).returncode == 0
    env = alice.env(HPCFLOW_HOME=str(home))
    done = alice.hpcflow(["run", str(REPO / "examples" / "quickstart.py")], env=env, cwd=work,
                         umask=0)
    assert done.returncode == 0, done.stdout + done.stderr
    # the home is made private from the start (the first upload's staging folder made it
    # with the umask's mode, then it was tightened, and the user told so, on a first run)
    assert "had mode" not in done.stderr, done.stderr
    try:
        assert (home / "runs").is_dir() and (home / "artifacts").is_dir()
        assert loose_entries(home) == []
        # a daemon started by hand, from a shell with umask 000, the same
        alice.hpcflow(["daemon", "stop"], env=env)
        (home / "logs" / "daemon.out").unlink()
        done = alice.hpcflow(["daemon", "start"], env=env, umask=0)
        assert done.returncode == 0, done.stderr
        assert loose_entries(home) == []
    finally:
        alice.hpcflow(["daemon", "stop"], env=env)
    # and mallory, in alice's group or not, reads nothing of it
    done = mallory.run(["cat", str(home / "store.db")])
    assert done.returncode != 0


def test_a_config_file_others_can_write_is_refused(machine):
    """Keys like python, prepare and container run commands: the config file is held to the
    store's rule whether or not it holds secrets."""
    alice, mallory, base = machine
    home = alice.home / ".hpcflow-config"
    config = alice.home / "config.toml"
    assert alice.run(["sh", "-c", f"printf '[daemon]\\nlog_level = \"info\"\\n' > {config}"]
                     ).returncode == 0
    os.chmod(config, 0o664)
    env = alice.env(HPCFLOW_HOME=str(home), HPCFLOW_CONFIG=str(config))
    _one_line_error(alice.hpcflow(["daemon", "start"], env=env),
                    f"refusing the config file {config}", "writable by group or others",
                    f"chmod go-w {config}")
    os.chmod(config, 0o644)
    # mallory's file, even read-only to her, is not alice's
    theirs = base / "mallory-config.toml"
    theirs.write_text('[daemon]\nlog_level = "info"\n')
    os.chown(theirs, mallory.uid, mallory.gid)
    os.chmod(theirs, 0o644)
    _one_line_error(alice.hpcflow(["daemon", "start"],
                                  env=alice.env(HPCFLOW_HOME=str(home),
                                                HPCFLOW_CONFIG=str(theirs))),
                    "is a file owned by hfmallory")
    done = alice.hpcflow(["daemon", "start"], env=env)
    assert done.returncode == 0, done.stderr
    alice.hpcflow(["daemon", "stop"], env=env)


def test_ps_shows_other_accounts_no_workflow_ids(machine, tmp_path):
    alice, mallory, _ = machine
    home = alice.home / ".hpcflow-ps"
    work = alice.home / "ps-work"
    assert alice.run(["mkdir", str(work)]).returncode == 0
    script = work / "slow.py"
    script.write_text(
        "import time\n"
        "from hpcflow import Step, Workflow\n"
        "from hpcflow.python import OP, PythonOPTemplate\n"
        "@OP.function\n"
        "def slow(secret_value: str) -> {'y': str}:\n"
        "    import time, pathlib\n"
        "    pathlib.Path('/tmp/hf-ps-started-' + secret_value).touch()\n"
        "    time.sleep(600)\n"
        "    return {'y': secret_value}\n"
        "from hpcflow import ShellOPTemplate\n"
        "shell = ShellOPTemplate(name='shell-slow', image='alpine', "
        # $HOME, not the path: a script template's /tmp paths are moved under its workdir
        "script='touch \"$HOME/ps-work/shell-{{inputs.parameters.v}}\" && sleep 600')\n"
        "from hpcflow.io import InputParameter\n"
        "shell.inputs.parameters = {'v': InputParameter()}\n"
        "wf = Workflow(name='pswf')\n"
        f"wf.add([Step('slow', PythonOPTemplate(slow), "
        f"parameters={{'secret_value': 'sv{os.getpid()}'}}), "
        f"Step('shell', shell, parameters={{'v': 'sv{os.getpid()}'}})])\n"
        "wf.submit()\n"
        "print(wf.id)\n")
    os.chmod(script, 0o644)
    env = alice.env(HPCFLOW_HOME=str(home), HPCFLOW_LOCAL_PARALLELISM="2")
    marker = Path(f"/tmp/hf-ps-started-sv{os.getpid()}")
    shell_marker = work / f"shell-sv{os.getpid()}"
    done = alice.run([str(USERS_VENV / "bin" / "python"), str(script)], env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.strip().splitlines()[-1]
    try:
        deadline = time.time() + 120
        while not (marker.exists() and shell_marker.exists()):
            assert time.time() < deadline, "the steps never started"
            time.sleep(0.2)
        seen = mallory.run(["ps", "-eo", "args"]).stdout
        assert "forkserver" in seen and "sleep 600" in seen, seen  # alice's are listed...
        assert wf_id not in seen and f"sv{os.getpid()}" not in seen, seen  # ...not her work
    finally:
        alice.hpcflow(["terminate", wf_id], env=env)
        alice.hpcflow(["daemon", "stop"], env=env)
        marker.unlink(missing_ok=True)
        shell_marker.unlink(missing_ok=True)
