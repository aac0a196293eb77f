"""Real unprivileged accounts for the shared-login-node tests.

The tests run as root and make two ordinary users, ``hfalice`` (the hpcflow user) and
``hfmallory`` (another account on the same login node), with ``useradd``; the attacks are
then made by ``hfmallory``'s own processes. The users run hpcflow from a virtual environment
of Debian's Python outside ``/root`` (the project's ``.venv`` points into ``/root``, which
they cannot enter), with hpcflow installed from this checkout in editable mode.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
USERS_VENV = Path(os.environ.get("HPCFLOW_USERS_VENV", "/opt/hpcflow-users-venv"))
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A login-like environment for this account (nothing of root's)."""
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
               "PATH": f"{USERS_VENV}/bin:/usr/local/bin:/usr/bin:/bin",
               "LANG": "C.UTF-8", "HPCFLOW_ENGINE_IDLE_EXIT": "60"}
        for name in ("SLURM_CONF",):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(extra)
        return env

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            cwd: Path | None = None, umask: int | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``argv`` as this account (its own uid, gid and no other groups)."""
        def drop() -> None:
            if umask is not None:
                os.umask(umask)

        return subprocess.run(argv, env=env or self.env(), cwd=cwd or self.home,
                              user=self.uid, group=self.gid, extra_groups=[],
                              preexec_fn=drop, capture_output=True, text=True,
                              timeout=timeout)

    def hpcflow(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return self.run([str(USERS_VENV / "bin" / "hpcflow"), *args], **kwargs)  # type: ignore[arg-type]

    def python(self, code: str, **kwargs: object) -> subprocess.CompletedProcess:
        return self.run([str(USERS_VENV / "bin" / "python"), "-c", code], **kwargs)  # type: ignore[arg-type]


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd: the test makes real users")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"needs {SYSTEM_PYTHON} for the users' virtual environment")


def make_account(name: str, home: Path) -> Account:
    """The account ``name`` (made if missing) with ``home`` as its home, private to it."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh",
                        "--home-dir", str(home), name], check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return Account(name, entry.pw_uid, entry.pw_gid, home)


def _venv_stamp() -> str:
    return hashlib.sha256((REPO / "pyproject.toml").read_bytes()
                          + str(REPO).encode()).hexdigest()


def users_venv() -> Path:
    """A venv every account can run, with hpcflow from this checkout (made once; again when
    pyproject.toml changes)."""
    stamp = USERS_VENV / ".hpcflow-stamp"
    USERS_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{USERS_VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == _venv_stamp():
            return USERS_VENV
        shutil.rmtree(USERS_VENV, ignore_errors=True)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(USERS_VENV)], check=True,
                       capture_output=True, timeout=300)
        done = subprocess.run([str(USERS_VENV / "bin" / "pip"), "install", "--quiet", "-e",
                               str(REPO)], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"cannot make {USERS_VENV}: {done.stderr[-2000:]}")
        for path in [USERS_VENV, *USERS_VENV.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, os.stat(path).st_mode | 0o055 if path.is_dir()
                         else os.stat(path).st_mode | 0o044)
        stamp.write_text(_venv_stamp())
    return USERS_VENV


@contextmanager
def shared_machine() -> Iterator[tuple[Account, Account, Path]]:
    """``(alice, mallory, base)``: two accounts with homes under ``base`` (root's, 0755),
    as on a login node. hpcflow engines they started are stopped afterwards."""
    need_root()
    users_venv()
    base = Path(tempfile.mkdtemp(prefix="hpcflow-shared-", dir="/tmp"))
    os.chmod(base, 0o755)
    alice = make_account("hfalice", base / "alice")
    mallory = make_account("hfmallory", base / "mallory")
    for account in (alice, mallory):
        slurm_association(account.name)
    try:
        yield alice, mallory, base
    finally:
        for account in (alice, mallory):
            subprocess.run(["pkill", "-KILL", "-u", account.name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def slurm_association(user: str) -> None:
    """The test Slurm enforces associations (as production clusters do): a job of ``user``
    needs one. Added under the services' account when ``sacctmgr`` reaches slurmdbd;
    nothing otherwise (a test without Slurm does not need it)."""
    if shutil.which("sacctmgr") is None or not os.environ.get("SLURM_CONF"):
        return
    known = subprocess.run(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}",
                            "format=user"], capture_output=True, text=True, timeout=60)
    if known.returncode == 0 and user not in known.stdout.split():
        subprocess.run(["sacctmgr", "-i", "add", "user", user, "account=hpcflow",
                        "cluster=localhost"], capture_output=True, text=True, timeout=60)


def loose_entries(root: Path) -> list[str]:
    """Files and directories under ``root`` (itself included) that group or others may
    read, write or enter, with their modes."""
    import stat

    loose = []
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
            loose.append(f"{path} {stat.S_IMODE(st.st_mode):04o}")
    return loose

