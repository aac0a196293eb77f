"""Keeping hpcflow's state out of other accounts' reach on a shared machine.

hpcflow's home holds pickled code (the store, step directories, ``op.pkl``) and results the
daemon reads back, so whoever can write there, or re-point the path to it, can run code as
the user. The rule is OpenSSH's ``StrictModes``: every component of the path as given,
symlinks included (``lstat``), belongs to root or the user, and no directory on it is
writable by group or others unless it is root's and sticky (``/tmp``). A symlink is
followed only after its own owner passed, and its target's path is held to the same rule:
a site's root-owned ``/home/alice -> /gpfs/home/alice`` is fine, a ``/tmp/hf -> ~/.hpcflow``
made by another account is not.

Everything hpcflow creates is private whatever the umask: ``private_umask()`` around the
writes of the SDK, and ``os.umask(0o077)`` in the daemon and the runner (their processes
write nothing meant for others).

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> trusted_path(d) == os.path.realpath(d)
True
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hpcflow.errors import HpcflowError

#: Symlinks followed before giving up (the kernel's own limit).
MAX_SYMLINKS = 40
PRIVATE_UMASK = 0o077


class UntrustedPathError(HpcflowError):
    """A path hpcflow keeps its state under is controlled by another account."""


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _check_component(path: str, st: os.stat_result, uid: int, what: str) -> None:
    if st.st_uid not in (0, uid):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else \
            "a directory" if stat.S_ISDIR(st.st_mode) else "a file"
        raise UntrustedPathError(
            f"refusing {what}: {path} is {kind} owned by {_owner(st.st_uid)}, so that "
            f"account could redirect or replace hpcflow's files and run code as you; use a "
            f"path whose every directory belongs to you or root")
    if stat.S_ISDIR(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if st.st_uid == 0 and st.st_mode & stat.S_ISVTX:
            return  # /tmp: others can write, but not rename or remove what is ours
        raise UntrustedPathError(
            f"refusing {what}: the directory {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}), so they could replace what is under it; fix "
            f"with: chmod go-w {path}")


def trusted_path(path: str | os.PathLike[str], uid: int | None = None,
                 what: str | None = None) -> str:
    """The real path of ``path`` after checking every component on the way (symlinks and
    their targets included) against the rule above. Components that do not exist yet are
    fine: whoever creates them is checked the next time. Raises ``UntrustedPathError``."""
    uid = os.geteuid() if uid is None else uid
    given = os.path.abspath(os.path.expanduser(os.fspath(path)))
    return _walk(given, uid, what or f"the path {given}", [0])


def _walk(path: str, uid: int, what: str, links: list[int]) -> str:
    current = "/"
    _check_component("/", os.lstat("/"), uid, what)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for index, name in enumerate(parts):
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return os.path.join(candidate, *parts[index + 1:])
        _check_component(candidate, st, uid, what)
        if stat.S_ISLNK(st.st_mode):
            links[0] += 1
            if links[0] > MAX_SYMLINKS:
                raise UntrustedPathError(f"refusing {what}: too many symlinks on the way")
            target = os.readlink(candidate)
            current = _walk(target if target.startswith("/") else
                            os.path.join(current, target), uid, what, links)
        else:
            current = candidate
    return current


@dataclass(frozen=True)
class DirIdentity:
    """What a directory was when it was checked: a replaced one differs in these."""

    path: str
    device: int
    inode: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> DirIdentity:
        st = os.stat(path)
        return cls(os.fspath(path), st.st_dev, st.st_ino)

    def changed(self) -> str | None:
        """Why the directory is no longer the one checked, or None."""
        try:
            st = os.lstat(self.path)
        except OSError as exc:
            return f"{self.path} is gone ({exc.strerror})"
        if (st.st_dev, st.st_ino) != (self.device, self.inode):
            return f"{self.path} was replaced by another directory"
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            return (f"{self.path} now belongs to {_owner(st.st_uid)} with mode "
                    f"{stat.S_IMODE(st.st_mode):04o}")
        return None


def secure_home(path: str | os.PathLike[str], create: bool = True) -> Path:
    """hpcflow's home checked and resolved once: its real path, to be used from then on.

    The path to it must pass ``trusted_path``; the home itself must be the user's own
    directory, and one with group or other bits is tightened to 0700 (said on stderr)."""
    given = os.path.abspath(os.path.expanduser(os.fspath(path)))
    what = f"HPCFLOW_HOME {given}"
    _tighten_own_directory(given)
    real = trusted_path(given, what=what)
    if create and not os.path.lexists(real):
        with private_umask():
            os.makedirs(real, mode=0o700, exist_ok=True)
        real = trusted_path(given, what=what)  # whoever made it first is checked now
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return Path(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedPathError(f"{what} is not a directory: point HPCFLOW_HOME elsewhere")
    if st.st_uid != os.geteuid():
        raise UntrustedPathError(
            f"refusing {what}: {real} belongs to {_owner(st.st_uid)}, not to you; use a "
            f"directory of your own")
    _tighten_own_directory(real)
    return Path(real)


def _tighten_own_directory(path: str) -> None:
    """A plain directory of the user's that others may enter or write is made 0700."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or not st.st_mode & 0o077:
        return
    if os.path.dirname(os.path.abspath(path)) == "/" or st.st_mode & stat.S_ISVTX:
        # as root, /, /proc or /tmp is "the user's": never made private
        raise UntrustedPathError(f"refusing {path}: a system or shared directory is no "
                                 "home for hpcflow; give a directory of its own")
    os.chmod(path, 0o700)
    print(f"hpcflow: {path} had mode {stat.S_IMODE(st.st_mode):04o}; made it 0700 "
          f"(it holds code hpcflow runs as you)", file=sys.stderr)


def check_private_file(path: Path, what: str) -> None:
    """A file that makes hpcflow run code (the config file): the user's, and neither it nor
    its directory writable by group or others (nor anything on the way to it)."""
    real = trusted_path(path, what=f"{what} {path}")  # owners on the way, the file's too
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedPathError(
            f"refusing {what} {path}: it is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}), and its settings run commands as you; fix "
            f"with: chmod go-w {path}")


def current_umask() -> int:
    """This process's umask (read by setting it and back: there is no other way)."""
    mask = os.umask(PRIVATE_UMASK)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories made inside are the user's only, whatever the umask."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


#: ``python -c`` that runs a module as ``-m`` would, but first takes the working directory
#: (``''``) off the front of ``sys.path``: for interpreters that may not have ``-P``.
_SAFE_RUN_MODULE = ("import sys; sys.path[:1] == [''] and sys.path.pop(0); import runpy; "
                    "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")


def module_command(python: str, module: str) -> list[str]:
    """The command that runs ``module`` as ``python -m module`` would, except that the
    folder it is started in is not searched for modules.

    ``python -m`` puts the working directory first on ``sys.path``, ahead of the standard
    library: a daemon started from ``/tmp`` or a group's project folder would import a
    ``watchdog.py`` or ``json.py`` that another account left there, and run it as the user.
    ``-P`` (Python 3.11+) leaves it out; for an interpreter that may be older, ``-c`` takes
    the entry off before anything is imported.

    >>> module_command(sys.executable, "m")[1:] == (["-P", "-m", "m"]
    ...     if sys.version_info >= (3, 11) else module_command("/other/python", "m")[1:])
    True
    >>> module_command("/other/python", "m")[1]
    '-c'
    """
    same = os.path.realpath(python) == os.path.realpath(sys.executable)
    if same and sys.version_info >= (3, 11):
        return [python, "-P", "-m", module]
    return [python, "-c", _SAFE_RUN_MODULE.format(module=module)]
