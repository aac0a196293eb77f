"""An ``$HPCFLOW_HOME`` that cannot be used is one line from every command, naming it and what
to do: set but empty, a file, a path under a file, under ``/proc`` (or another kernel file
system), on a read-only file system, or not writable by the user (a real unprivileged
account, ``tests/accounts.py``). Nothing is made anywhere, ``~/.hpcflow`` included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.accounts import Account, make_account, need_root, users_venv

SCRIPT = """from hpcflow import Workflow
Workflow("bad-home").submit()
"""

#: Every kind of command: the read-only ones, the script runners, the daemon's, doctor.
COMMANDS = (["status"], ["list"], ["submit", "wf.py"], ["run", "wf.py"], ["daemon", "start"],
            ["daemon", "tick"], ["doctor"])
TODO = "set HPCFLOW_HOME to a directory of yours, or unset it for ~/.hpcflow"


def hpcflow(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpcflow.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The single ``hpcflow: ...`` line a refused command printed; it holds every word."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcflow: "), done.stderr
    assert "Traceback" not in done.stderr and "HPCFLOW_TRACEBACK" not in done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert done.stdout == "", done.stdout
    return lines[0]


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A user's $HOME (private) holding the workflow script; hpcflow must not fall back to
    its ``.hpcflow``."""
    home = tmp_path / "user"
    home.mkdir(mode=0o700)
    (home / "wf.py").write_text(SCRIPT)
    return home


def env_for(user_dir: Path, hpcflow_home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCFLOW_")}
    return {**env, "HOME": str(user_dir), "HPCFLOW_HOME": hpcflow_home,
            "HPCFLOW_ENGINE_IDLE_EXIT": "60"}


def bad_homes(base: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each unusable home, with the words its line must hold."""
    a_file = base / "a-file"
    a_file.write_text("not a directory\n")
    scratch = base / "scratch"  # shared as /tmp is: everyone writes, the sticky bit protects
    scratch.mkdir()
    scratch.chmod(0o1777)
    loop = base / "loop"
    if not loop.is_symlink():
        os.symlink(base / "loop-back", loop)
        os.symlink(loop, base / "loop-back")
    return {
        "empty": ("", ("HPCFLOW_HOME is set but empty", TODO)),
        "blank": ("  ", ("HPCFLOW_HOME is set but empty", TODO)),
        "a file": (str(a_file), (f"HPCFLOW_HOME {a_file} is a file, not a directory", TODO)),
        "a symlink loop": (str(loop), (f"refusing HPCFLOW_HOME {loop}: too many symlinks",)),
        "under a file": (str(a_file / "hf"), (f"HPCFLOW_HOME {a_file}/hf cannot be made",
                                              f"{a_file} is a file", TODO)),
        "under /proc": ("/proc/hpcflow-home", ("HPCFLOW_HOME /proc/hpcflow-home is on /proc",
                                               "proc file system", TODO)),
        "/proc itself": ("/proc", ("HPCFLOW_HOME /proc is on /proc", TODO)),
        "under /sys": ("/sys/hpcflow-home", ("HPCFLOW_HOME /sys/hpcflow-home is on /sys",
                                             "sysfs", TODO)),
        # made private (0700) as a home is, it would lock every other user out
        "/tmp": ("/tmp", ("HPCFLOW_HOME /tmp is the system directory /tmp", "private", TODO)),
        "/": ("/", ("HPCFLOW_HOME / is the system directory /", TODO)),
        "shared scratch": (str(scratch), (f"HPCFLOW_HOME {scratch} is a directory every user "
                                          f"shares ({scratch}, mode 1777)",
                                          "makes its home private (mode 0700)", TODO)),
    }


@pytest.mark.parametrize("case", ["empty", "blank", "a file", "a symlink loop", "under a file",
                                  "under /proc",
                                  "/proc itself", "under /sys", "/tmp", "/", "shared scratch"])
def test_an_unusable_home_is_one_line_from_every_command(case: str, user_dir: Path,
                                                         tmp_path: Path):
    value, words = bad_homes(tmp_path)[case]
    env = env_for(user_dir, value)
    modes = {p: os.stat(p).st_mode for p in ("/", "/tmp", "/proc", "/sys", tmp_path / "scratch")}
    for args in COMMANDS:
        one_line(hpcflow(args, env, user_dir), *words)
    # nothing was made (not the default home, not the bad one) and nothing was changed
    assert sorted(p.name for p in user_dir.iterdir()) == ["wf.py"]
    assert not Path("/proc/hpcflow-home").exists() and (tmp_path / "a-file").is_file()
    assert {p: os.stat(p).st_mode for p in modes} == modes


def test_a_home_set_in_the_script_is_checked_too(user_dir: Path):
    (user_dir / "wf.py").write_text('import hpcflow\nhpcflow.config["home"] = ""\n' + SCRIPT)
    env = env_for(user_dir, str(user_dir / "good"))
    line = one_line(hpcflow(["submit", "wf.py"], env, user_dir), 'config["home"] is set but '
                    'empty', 'set config["home"] to a directory of yours')
    assert line.startswith("hpcflow: wf.py (line 4): ")  # the submit() line


def _readonly(home: Path, args: list[str], env: dict[str, str],
              cwd: Path) -> subprocess.CompletedProcess:
    """``hpcflow ARGS`` in a mount namespace of its own where ``home`` is mounted read-only
    (a bind mount: the file system of the machine is not touched)."""
    command = (f"mount --bind -o ro {home} {home} && exec {sys.executable} -m "
               f"hpcflow.cli.main {' '.join(args)}")
    return subprocess.run(["unshare", "--mount", "sh", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_home_on_a_read_only_file_system(user_dir: Path, tmp_path: Path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    ro = tmp_path / "ro"
    (ro / "hf").mkdir(parents=True, mode=0o700)
    probe = subprocess.run(["unshare", "--mount", "sh", "-c",
                            f"mount --bind -o ro {ro} {ro}"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()}")
    for home in (ro / "hf", ro / "missing"):  # the home, or the directory it is made in
        env = env_for(user_dir, str(home))
        for args in COMMANDS:
            one_line(_readonly(ro, args, env, user_dir),
                     f"HPCFLOW_HOME {home} is on a read-only file system ({ro})", TODO)


@pytest.fixture(scope="module")
def account() -> Iterator[tuple[Account, Path]]:
    """An unprivileged account of its own (not the shared-node tests' ones), with its home
    under a root-owned 0755 directory."""
    need_root()
    users_venv()
    base = Path(tempfile.mkdtemp(prefix="hpcflow-badhome-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield make_account("hfbadhome", base / "user"), base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_home_the_user_cannot_write(account: tuple[Account, Path]):
    user, base = account
    (user.home / "wf.py").write_text(SCRIPT)
    os.chown(user.home / "wf.py", user.uid, user.gid)
    mine = user.home / "locked"  # the user's own directory, without write permission
    mine.mkdir(mode=0o500, exist_ok=True)
    os.chown(mine, user.uid, user.gid)
    os.chmod(mine, 0o500)
    rooted = base / "root-only" / "hf"  # missing, in a directory of root's
    rooted.parent.mkdir(mode=0o755, exist_ok=True)
    cases = {mine: (f"HPCFLOW_HOME {mine} is not writable by you (owner hfbadhome, mode "
                    f"0500): chmod u+rwx {mine}",),
             rooted: (f"HPCFLOW_HOME {rooted} does not exist and cannot be made: you cannot "
                      f"write in {rooted.parent} (owner root, mode 0755)",)}
    for home, words in cases.items():
        env = user.env(HPCFLOW_HOME=str(home))
        for args in COMMANDS:
            one_line(user.hpcflow(args, env=env, cwd=user.home), *words, TODO)
    assert not rooted.exists() and list(mine.iterdir()) == []
    assert not (user.home / ".hpcflow").exists()


def test_the_daemon_process_never_makes_a_shared_directory_private(tmp_path: Path):
    """``python -m hpcflow.daemon.process --home DIR`` (how ``daemon start`` and the service
    unit start it) skips the CLI's checks: a sticky, world-writable directory (as /tmp) given
    as the home is refused, not made 0700 (as root, it would otherwise be "the user's")."""
    import os
    import subprocess
    import sys

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    done = subprocess.run([sys.executable, "-m", "hpcflow.daemon.process", "--home",
                           str(shared), "--tick"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "a system or shared directory is no home for hpcflow" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert oct(os.stat(shared).st_mode & 0o7777) == "0o1777"
