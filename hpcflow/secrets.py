"""Secrets a workflow script hands over (an SSH password in ``DispatcherExecutor(password=)``,
a Bohrium password in a machine dict) without writing them into the store.

The store holds only a reference: the secret values go into ``$HPCFLOW_HOME/secrets/REF.json``
(mode 0600, in a 0700 directory), where the daemon of that home reads them back. The reference
is an HMAC of the values under a random key kept beside them, so equal secrets give equal
references (one executor, not one per workflow) while the reference in the store reveals
nothing that could be brute-forced offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as random_source
from pathlib import Path
from typing import Any

from hpcflow.errors import HpcflowError

SECRETS_DIR = "secrets"
KEY_FILE = ".key"
REF = re.compile(r"^[0-9a-f]{32}$")


def _private_dir(home: Path) -> Path:
    folder = home / SECRETS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path``, readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key(folder: Path) -> bytes:
    path = folder / KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another submission made it first
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(random_source.token_bytes(32))
    return path.read_bytes()


def stash(home: Path, values: dict[str, Any]) -> str:
    """Keep ``values`` for the daemon of ``home``; the reference to put in the store."""
    folder = _private_dir(home)
    data = json.dumps(values, sort_keys=True).encode()
    ref = hmac.new(_key(folder), data, hashlib.sha256).hexdigest()[:32]
    path = folder / f"{ref}.json"
    if not path.exists():
        _write_private(path, data)
    return ref


def reveal(home: Path, ref: str) -> dict[str, Any]:
    """The values kept under ``ref`` (one line naming the file when they are gone)."""
    if not REF.match(ref):
        raise HpcflowError(f"malformed secret reference {ref!r} in the workflow")
    path = home / SECRETS_DIR / f"{ref}.json"
    try:
        values: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise HpcflowError(f"the credentials this step's executor was given are not in {path} "
                           "any more: submit the workflow again from its script") from None
    return values
