"""The deployment files in manifests/ work as shipped.

A user's ``$HOME`` is made here the way the README installs the service (its commands run
as written: ``~/.local/bin/hpcflow`` links to this checkout's ``.venv``), with a login
profile that puts a directory of scheduler commands (``sbatch``, ``qsub``, ``bsub``
stand-ins) on PATH, as ``module load slurm`` would, and exports another ``HPCFLOW_HOME``.
Then:

- the systemd unit passes ``systemd-analyze verify``, system and ``--user``, names only units
  a user manager has (no ``network-online.target``), and its ``ExecStart``, run in the bare
  environment systemd gives a user service, is the daemon itself (``exec``: systemd's
  MAINPID), serves ``~/.hpcflow``, finds the profile's scheduler commands, reloads on
  SIGHUP and exits 0 on SIGTERM;
- every crontab and scrontab line, run by ``sh`` as cron (or Slurm) runs it, gets the
  profile's PATH and the home and ``HPCFLOW_ENGINE_AUTOSTART`` it means; the crontab's lines
  with the real hpcflow start a daemon (which finds the scheduler commands), finish a
  workflow by ticks alone and submit the campaign once without starting a daemon; the
  scrontab line appends its output to the log file its ``#SCRON --output`` names.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hpcflow.daemon.engine import engine_pid
from tests.conftest import REPO, integrity_ok, wait_until

MANIFESTS = REPO / "manifests"
UNIT = MANIFESTS / "systemd" / "hpcflow.service"
CRONTAB = MANIFESTS / "cron" / "crontab"
SCRONTAB = MANIFESTS / "cron" / "scrontab"
HPCFLOW = Path(sys.executable).parent / "hpcflow"
SCHEDULER_COMMANDS = ("sbatch", "squeue", "qsub", "qstat", "bsub", "bjobs")
#: The PATH systemd's user manager gives its services, and cron's.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
CRON_PATH = "/usr/bin:/bin"

NIGHTLY = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def inc(x: int) -> {"y": int}:
    return {"y": x + 1}

wf = Workflow("nightly")
prev = None
for i in range(3):
    prev = Step(f"s{i}", PythonOPTemplate(inc),
                parameters={"x": prev.outputs.parameters["y"] if prev else 0})
    wf.add(prev)
wf.submit()
'''

#: Stands in for hpcflow in the probe tests: records what the line gave it.
PROBE = """#!/bin/sh
{
  echo "PATH=$PATH"
  echo "HPCFLOW_HOME=$HPCFLOW_HOME"
  echo "HPCFLOW_ENGINE_AUTOSTART=${HPCFLOW_ENGINE_AUTOSTART-unset}"
  echo "PWD=$PWD"
  echo "ARGS=$*"
} > "$HOME/probe.out"
echo "probe ran"
"""


def readme_install_block() -> list[str]:
    """The commands of the README's systemd install block (without their comments)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## The daemon as a service", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's service section has no install block"
    lines = [line.split(" #", 1)[0].strip() for line in block.group(1).splitlines()]
    lines = [line for line in lines if line]
    assert any("hpcflow.service" in line for line in lines)
    return lines


def readme_install_commands() -> list[str]:
    """The install block's commands that need no systemd (all but systemctl, loginctl)."""
    return [line for line in readme_install_block()
            if not line.startswith(("systemctl", "loginctl"))]


def test_the_units_header_installs_it_as_the_readme_does():
    header = [line[1:].strip() for line in UNIT.read_text().splitlines()
              if line.startswith("#")]
    for command in readme_install_block():
        assert any(line.split(" #", 1)[0].strip() == command for line in header), command


def make_user_home(root: Path, hpcflow: Path | None = None) -> Path:
    """A user's $HOME as the README's install leaves it (``hpcflow`` linked in
    ``~/.local/bin``, or ``hpcflow`` put there instead), with scheduler commands on the login
    profile's PATH only."""
    home = root / "user"
    home.mkdir(mode=0o700)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    for command in readme_install_commands():
        done = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
    installed = home / ".local" / "bin" / "hpcflow"
    assert installed.resolve() == HPCFLOW.resolve()
    if hpcflow is not None:
        installed.unlink()
        installed.write_text(hpcflow.read_text())
        installed.chmod(0o755)
    sched = home / "sched" / "bin"
    sched.mkdir(parents=True)
    for name in SCHEDULER_COMMANDS:
        (sched / name).write_text(f"#!/bin/sh\necho {name} stand-in\n")
        (sched / name).chmod(0o755)
    (home / ".bash_profile").write_text(
        '# what `module load slurm` does, and a home the unit and the cron lines override\n'
        'export PATH="$HOME/sched/bin:$PATH"\n'
        'export HPCFLOW_HOME="$HOME/profile-home"\n')
    return home


def finds_scheduler(path: str, home: Path) -> bool:
    """Every scheduler command resolves, on ``path``, to the profile's."""
    return all(shutil.which(name, path=path) == str(home / "sched" / "bin" / name)
               for name in SCHEDULER_COMMANDS)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


# -- systemd -------------------------------------------------------------------------------

def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_env(home: Path, runtime: Path) -> dict[str, str]:
    """What systemd's user manager gives a service: no profile, its own PATH."""
    user = getpass.getuser()
    return {"HOME": str(home), "USER": user, "LOGNAME": user, "SHELL": "/bin/bash",
            "PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(runtime)}


def runtime_dir(tmp_path: Path) -> Path:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return runtime


def need_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")


def test_the_unit_verifies_once_installed_as_the_readme_says(tmp_path: Path):
    need_systemd_analyze()
    home = make_user_home(tmp_path)
    installed = home / ".config" / "systemd" / "user" / "hpcflow.service"
    assert installed.read_text() == UNIT.read_text()
    env = systemd_env(home, runtime_dir(tmp_path))
    for mode in ([], ["--user"]):  # %h is the user's home in both
        done = subprocess.run(["systemd-analyze", *mode, "verify", str(installed)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stderr.strip(), (mode, done.stderr)


def test_the_unit_names_only_units_a_user_manager_has(tmp_path: Path):
    need_systemd_analyze()
    home = make_user_home(tmp_path)
    env = systemd_env(home, runtime_dir(tmp_path))
    paths = subprocess.run(["systemd-analyze", "--user", "unit-paths"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert paths.returncode == 0, paths.stderr
    available = {entry.name for directory in paths.stdout.split()
                 if Path(directory).is_dir() for entry in Path(directory).iterdir()}
    assert "default.target" in available
    sections = unit_sections(UNIT.read_text())
    named = [name for section in ("Unit", "Install")
             for key in ("After", "Before", "Wants", "Requires", "BindsTo", "PartOf",
                         "WantedBy", "RequiredBy")
             for value in sections.get(section, {}).get(key, []) for name in value.split()]
    assert named, "the unit names no target at all"
    missing = sorted(set(named) - available)
    assert not missing, f"not units of a user manager: {missing}"


def exec_start(home: Path) -> list[str]:
    """The unit's ExecStart as systemd runs it: specifiers expanded, then split."""
    (value,) = unit_sections(UNIT.read_text())["Service"]["ExecStart"]
    assert "$" not in value, "systemd would expand $VARIABLES in ExecStart itself"
    expanded = value.replace("%h", str(home)).replace("%%", "%")
    assert "%" not in expanded, expanded
    return shlex.split(expanded)


def test_the_units_execstart_is_the_daemon_with_the_login_profiles_path(tmp_path: Path):
    home = make_user_home(tmp_path)
    argv = exec_start(home)
    assert argv[:2] == ["/bin/bash", "-lc"], "ExecStart must go through a login shell"
    env = systemd_env(home, runtime_dir(tmp_path))
    assert not finds_scheduler(env["PATH"], home)  # systemd's own PATH does not
    state = home / ".hpcflow"
    log = tmp_path / "journal.txt"
    with open(log, "w") as journal:
        proc = subprocess.Popen(argv, env=env, cwd=home, stdout=journal, stderr=journal,
                                start_new_session=True)
    try:
        # exec'd: the process systemd started (MAINPID) is the daemon, serving ~/.hpcflow
        wait_until(lambda: f"engine {proc.pid} serving {state}" in log.read_text(),
                   "the unit's daemon", timeout=60)
        assert engine_pid(state) == proc.pid
        environ = environ_of(proc.pid)
        assert environ["HPCFLOW_HOME"] == str(state)
        assert finds_scheduler(environ["PATH"], home), environ["PATH"]
        assert not (home / "profile-home").exists()
        os.kill(proc.pid, signal.SIGHUP)  # ExecReload
        wait_until(lambda: "configuration reloaded" in log.read_text(), "the reload",
                   timeout=60)
        os.kill(proc.pid, signal.SIGTERM)  # systemctl --user stop
        (timeout,) = unit_sections(UNIT.read_text())["Service"]["TimeoutStopSec"]
        assert proc.wait(timeout=int(timeout)) == 0, log.read_text()  # no Restart=on-failure
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- cron and scrontab ---------------------------------------------------------------------

def schedule_lines(path: Path) -> dict[str, str]:
    """The command of each schedule line (commented-out ones too), keyed by the hpcflow
    command it runs (``daemon start``, ``submit``, ...); cron turns ``\\%`` into ``%``."""
    commands = {}
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").strip()
        fields = text.split(None, 5)
        if len(fields) < 6 or not all(f[0] in "*0123456789" for f in fields[:5]):
            continue
        command = fields[5].replace("\\%", "%")
        tokens = shlex.split(command)
        inner = tokens[tokens.index("-lc") + 1] if "-lc" in tokens else command
        words = inner.split("/.local/bin/hpcflow ", 1)[1].split()
        commands[" ".join(words[:2]) if words[0] == "daemon" else words[0]] = command
    return commands


def cron_env(home: Path) -> dict[str, str]:
    """What cron gives a job (Debian's cron: these and nothing else)."""
    return {"HOME": str(home), "LOGNAME": getpass.getuser(), "PATH": CRON_PATH,
            "SHELL": "/bin/sh"}


def run_as_cron(command: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], env=cron_env(home), capture_output=True,
                          text=True, timeout=120, cwd=home)


#: What each line means: its hpcflow command and HPCFLOW_ENGINE_AUTOSTART.
CRON_MEANING = {"daemon start": "unset", "daemon tick": "0", "submit": "0", "gc": "unset"}


@pytest.mark.parametrize("path", [CRONTAB, SCRONTAB], ids=lambda p: p.name)
def test_every_cron_line_gets_the_profile_the_home_and_autostart_it_means(path: Path,
                                                                          tmp_path: Path):
    probe = tmp_path / "probe"
    probe.write_text(PROBE)
    home = make_user_home(tmp_path, hpcflow=probe)
    (home / "campaign").mkdir()
    lines = schedule_lines(path)
    assert set(lines) == ({"daemon tick"} if path == SCRONTAB else set(CRON_MEANING))
    assert not finds_scheduler(CRON_PATH, home)
    for name, command in lines.items():
        assert "bash -lc '" in command, f"{path.name} {name}: not through a login shell"
        done = run_as_cron(command, home)
        assert done.returncode == 0, (name, done.stderr)
        seen = dict(line.split("=", 1) for line in
                    (home / "probe.out").read_text().splitlines())
        assert finds_scheduler(seen["PATH"], home), (name, seen["PATH"])
        assert seen["HPCFLOW_HOME"] == str(home / ".hpcflow"), name
        assert seen["HPCFLOW_ENGINE_AUTOSTART"] == CRON_MEANING[name], name
        assert seen["ARGS"].startswith(name), seen["ARGS"]
        assert seen["PWD"] == str(home / "campaign" if name == "submit" else home), name


def test_crontab_lines_run_a_daemon_ticks_and_a_campaign(tmp_path: Path):
    home = make_user_home(tmp_path)
    commands = schedule_lines(CRONTAB)
    state = home / ".hpcflow"
    (home / "campaign").mkdir()
    (home / "campaign" / "nightly.py").write_text(NIGHTLY)
    status_env = {**os.environ, "HPCFLOW_HOME": str(state)}

    def status(wf_id: str) -> dict:
        done = subprocess.run([str(HPCFLOW), "status", wf_id, "--json"], env=status_env,
                              capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout)

    try:
        # B) ticks only: the campaign line submits without starting a daemon, ticks finish it
        first = run_as_cron(commands["submit"], home)
        assert first.returncode == 0, first.stderr
        second = run_as_cron(commands["submit"], home)
        assert second.returncode == 0 and "nothing submitted" in second.stderr
        assert first.stdout == second.stdout and engine_pid(state) is None
        wf_id = first.stdout.strip()

        def ticked_to_the_end() -> bool:
            tick = run_as_cron(commands["daemon tick"], home)
            assert tick.returncode == 0, tick.stderr
            return status(wf_id)["phase"] == "Succeeded"

        wait_until(ticked_to_the_end, "the ticks to finish the campaign", interval=0.1)
        assert status(wf_id)["steps"] == {"Succeeded": 3} and engine_pid(state) is None
        assert "tick done" in (state / "logs" / "daemon.log").read_text()
        # A) keep a daemon alive: the first run starts it, the next ones leave it alone
        started = run_as_cron(commands["daemon start"], home)
        assert started.returncode == 0, started.stderr
        pid = engine_pid(state)
        assert pid and finds_scheduler(environ_of(pid)["PATH"], home)
        assert run_as_cron(commands["daemon start"], home).returncode == 0
        assert engine_pid(state) == pid
        idle_tick = run_as_cron(commands["daemon tick"], home)
        assert idle_tick.returncode == 0 and engine_pid(state) == pid
        assert "a daemon is running, nothing to do" in (state / "logs" / "daemon.log").read_text()
        assert run_as_cron(commands["gc"], home).returncode == 0
        assert integrity_ok(state)
        assert not (home / "profile-home").exists()
    finally:
        subprocess.run([str(HPCFLOW), "daemon", "stop"], env=status_env, capture_output=True,
                       timeout=120)


def scron_options(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text().splitlines():
        if line.startswith("#SCRON "):
            key, _, value = line[len("#SCRON "):].strip().partition("=")
            options[key] = value
    return options


def test_scrontab_tick_line_logs_to_a_file(tmp_path: Path):
    """Run as Slurm runs a scrontab entry: ``sh`` in $HOME, output appended to --output
    (relative to $HOME, where the job starts)."""
    options = scron_options(SCRONTAB)
    assert "--time" in options and options.get("--open-mode") == "append"
    output = options["--output"]
    assert output and output != "/dev/null" and not output.startswith("/"), output
    home = make_user_home(tmp_path)
    (command,) = schedule_lines(SCRONTAB).values()
    for _ in range(2):
        with open(home / output, "a") as log:
            done = subprocess.run(["sh", "-c", command], env=cron_env(home), cwd=home,
                                  stdout=log, stderr=subprocess.STDOUT, timeout=120)
        assert done.returncode == 0, (home / output).read_text()
    assert (home / output).read_text().count("tick done") == 2
    assert os.stat(home / ".hpcflow").st_mode & 0o077 == 0
    assert engine_pid(home / ".hpcflow") is None

