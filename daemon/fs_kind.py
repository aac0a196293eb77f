"""What kind of file system hpcflow's home is on, and whether it is shared between hosts.

SQLite's WAL mode keeps its index in shared memory, which works between processes of one
host only; on NFS, GPFS, Lustre, CephFS, BeeGFS and FUSE file systems the home may be seen
from several login nodes at once (and ``flock`` may be node-local there), so the store uses
the rollback journal and one leader host writes it (``daemon/leader.py``).

The type is read from ``/proc/self/mountinfo`` (the mount that holds the path: the longest
mount point that is a prefix of its real path), which names what ``statfs`` would.

>>> network_fs("nfs4"), network_fs("fuse.sshfs"), network_fs("ext4"), network_fs("tmpfs")
(True, True, False, False)
>>> mount_of("/home/a/.hpcflow", [("/", "ext4"), ("/home", "nfs4")])
('/home', 'nfs4')
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: File systems seen by several hosts (or through a user-space layer whose locking and
#: shared memory cannot be trusted): the store is written by the leader host only, with
#: the rollback journal.
SHARED_TYPES = ("nfs", "nfs4", "gpfs", "lustre", "ceph", "cifs", "smb3", "smbfs", "beegfs",
                "panfs", "glusterfs", "afs", "9p", "virtiofs", "ocfs2", "gfs2", "wekafs")
#: Set to a file system type to treat the home as on that one (tests; odd mounts).
FS_TYPE_ENV = "HPCFLOW_FS_TYPE"


def network_fs(fs_type: str) -> bool:
    return fs_type in SHARED_TYPES or fs_type == "fuse" or fs_type.startswith("fuse.")


def mount_of(path: str, mounts: list[tuple[str, str]]) -> tuple[str, str]:
    """The (mount point, type) holding ``path`` among ``mounts``."""
    best = ("/", "unknown")
    for point, fs_type in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fs_type)
    return best


def _unescape(field: str) -> str:
    """mountinfo writes spaces, tabs, newlines and backslashes as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def read_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    mounts = []
    try:
        with open(mountinfo) as f:
            for line in f:
                fields = line.split()
                if "-" not in fields:
                    continue
                dash = fields.index("-")
                mounts.append((_unescape(fields[4]), fields[dash + 1]))
    except OSError:
        pass
    return mounts


@dataclass(frozen=True)
class HomeFileSystem:
    """Where the home lives: its mount point, its type, and whether hosts share it."""

    mount_point: str
    fs_type: str
    shared: bool

    def describe(self) -> str:
        how = ("shared between hosts: rollback journal, one leader host writes the store"
               if self.shared else "local to this host: WAL journal")
        return f"{self.fs_type} at {self.mount_point} ({how})"


def home_file_system(home: str | os.PathLike[str]) -> HomeFileSystem:
    forced = os.environ.get(FS_TYPE_ENV)
    point, fs_type = mount_of(os.path.realpath(home), read_mounts())
    if forced:
        fs_type = forced
    return HomeFileSystem(point, fs_type, network_fs(fs_type))
