"""Whether a directory can be hpcflow's home, before anything looks inside or changes it:
one line naming the setting and what to do when it cannot (an empty setting, a file, a
kernel file system such as ``/proc``, a system or shared directory, a read-only or
unwritable place). Only reads (``hpcflow.privacy`` then makes the home private)."""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from hpcflow.errors import HpcflowError


class HomeError(HpcflowError):
    """The home hpcflow was told to use cannot hold its state (one line: which, and why)."""


#: Kernel file systems: nothing hpcflow writes can live there (``HPCFLOW_HOME=/proc/x``).
KERNEL_FS = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs",
                       "debugfs", "tracefs", "pstore", "bpf", "configfs", "fusectl", "mqueue",
                       "efivarfs", "selinuxfs", "binfmt_misc", "nsfs", "rpc_pipefs", "nfsd",
                       "hugetlbfs"})


@functools.lru_cache(maxsize=16)
def _mount(real: str) -> tuple[str, str]:
    """(mount point, file system type) holding the existing real path ``real``."""
    from hpcflow.daemon.fs_kind import mount_of, read_mounts

    return mount_of(real, read_mounts())


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def _kind(path: str) -> str:
    mode = os.lstat(path).st_mode
    return "a file" if stat.S_ISREG(mode) else "a symlink that loops" if stat.S_ISLNK(mode) \
        else "a device or special file"


def check_home_path(given: str, what: str, todo: str) -> tuple[str, str]:
    """Refuse, before anything looks inside or changes it, a home that cannot hold hpcflow's
    state: an empty setting, a file, a path under a file, one on a kernel file system
    (``/proc``), a system or shared directory (``/``, ``/tmp``: see ``secure_home``).
    Returns (the absolute path, the real path of it or of its nearest existing ancestor).
    Only reads."""
    if not given.strip():
        raise HomeError(f"{what} is set but empty: {todo}")
    path = os.path.abspath(os.path.expanduser(given))
    target = os.path.realpath(path)  # through symlinks: a link to a home not made yet is fine
    real = _nearest_existing(target)
    point, fs_type = _mount(real)
    if fs_type in KERNEL_FS:
        raise HomeError(f"{what} {given} is on {point}, the kernel's {fs_type} file system, "
                        f"not a place for files: {todo}")
    if not os.path.isdir(real):
        if real == target:
            raise HomeError(f"{what} {given} is {_kind(real)}, not a directory: {todo}")
        raise HomeError(f"{what} {given} cannot be made: {real} is {_kind(real)}, not a "
                        f"directory: {todo}")
    if real == target and (real in SYSTEM_DIRS or _shared_scratch(real)):
        # a home is made private (0700): that would lock every other user out of it
        mode = stat.S_IMODE(os.stat(real).st_mode)
        whose = f"the system directory {real}" if real in SYSTEM_DIRS else \
            f"a directory every user shares ({real}, mode {mode:04o})"
        raise HomeError(f"{what} {given} is {whose}, and hpcflow makes its home private (mode "
                        f"0700): {todo}")
    return path, real


#: The file system hierarchy's own directories: never anyone's home (see ``_shared_scratch``).
SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
                         "/lib64", "/media", "/mnt", "/opt", "/proc", "/run", "/sbin", "/srv",
                         "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/tmp"})


def _shared_scratch(real: str) -> bool:
    """A directory everyone may write in, sticky as ``/tmp`` is (``/dev/shm``, ``/scratch``)."""
    mode = os.stat(real).st_mode
    return bool(mode & stat.S_ISVTX and mode & stat.S_IWOTH)


def check_home_writable(path: str, real_home: Path, what: str, todo: str) -> None:
    """A home (or, if it does not exist yet, the directory it is to be made in) that this
    user can write, on a file system mounted read-write."""
    exists = os.path.lexists(real_home)
    where = str(real_home) if exists else _nearest_existing(os.path.realpath(path))
    try:
        read_only = bool(os.statvfs(where).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise HomeError(f"{what} {path} is on a read-only file system ({_mount(where)[0]}): "
                        f"{todo}")
    effective = os.access in os.supports_effective_ids
    if os.access(where, os.W_OK | os.X_OK, effective_ids=effective):
        return
    st = os.stat(where)
    owner = _owner_name(st.st_uid)
    mode = f"{stat.S_IMODE(st.st_mode):04o}"
    if exists:
        raise HomeError(f"{what} {path} is not writable by you (owner {owner}, mode {mode}): "
                        f"chmod u+rwx {where}, or {todo}")
    raise HomeError(f"{what} {path} does not exist and cannot be made: you cannot write in "
                    f"{where} (owner {owner}, mode {mode}): {todo}")


def _owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


