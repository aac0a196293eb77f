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

#: Variables that hold credentials (dflow's ``BOHRIUM_*``, AWS keys, anything named like a
#: password, token or key). The daemon keeps them for its own use and takes them out of its
#: environment, so that no step, scheduler job (sbatch's default ``--export=ALL``) or tool
#: it runs inherits them.
CREDENTIAL_NAME = re.compile(
    r"^(BOHRIUM_|BOHR_|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|SECURITY_TOKEN)$)"
    r"|PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY", re.IGNORECASE)
_held: dict[str, str] = {}

SECRETS_DIR = "secrets"
KEY_FILE = ".key"
REF = re.compile(r"^[0-9a-f]{32}$")


def hold_credentials() -> list[str]:
    """Move the credential variables of this process's environment into memory (the
    daemon calls this first thing); the names moved."""
    names = sorted(name for name in os.environ if CREDENTIAL_NAME.search(name))
    for name in names:
        _held[name] = os.environ.pop(name)
    return names


def without_credentials(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` (this process's environment) without credential variables: what the
    processes and jobs the daemon starts get.

    >>> without_credentials({"PATH": "/bin", "BOHRIUM_PASSWORD": "x", "MY_API_KEY": "y"})
    {'PATH': '/bin'}
    """
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not CREDENTIAL_NAME.search(k)}


def held_credentials() -> dict[str, str]:
    """The credential variables ``hold_credentials`` took (empty outside the daemon)."""
    return dict(_held)


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


class ResultKeys:
    """The keys runners seal their ``result.json`` with, one per step directory: an HMAC of
    the directory's name under this home's key. The daemon hands a job its keys through the
    job's environment and checks the seal before it uses anything of a result, so a result
    written by anyone else (another account that reached a step directory) is refused."""

    def __init__(self, home: Path) -> None:
        self._key = _key(_private_dir(home))

    def key(self, step_dir: str) -> str:
        """The key of a step that runs alone in its job."""
        name = os.path.basename(step_dir.rstrip("/"))
        return hmac.new(self._key, b"result\0" + name.encode(), hashlib.sha256).hexdigest()

    def seed(self, workflow_dir: str) -> str:
        """The seed the keys of a workflow directory's steps derive from, for a job that runs
        several of them (a pack, an array)."""
        name = os.path.basename(workflow_dir.rstrip("/"))
        return hmac.new(self._key, b"group\0" + name.encode(), hashlib.sha256).hexdigest()

    def keys(self, step_dir: str) -> list[str]:
        """The keys a result of ``step_dir`` may be sealed with: its own, or its workflow
        directory's seed's (when it ran in a job of several)."""
        from hpcflow.connectors.executors.base import derived_key

        path = step_dir.rstrip("/")
        return [self.key(path), derived_key(self.seed(os.path.dirname(path)),
                                            os.path.basename(path))]

    def env(self, step_dirs: list[str]) -> dict[str, str]:
        """The variable a job running ``step_dirs`` gets: the step's key, or for several
        steps their workflow directories' seeds (one short value however many steps)."""
        from hpcflow.connectors.executors.base import GROUP_SEEDS, RESULT_KEYS_ENV

        if len(step_dirs) == 1:
            return {RESULT_KEYS_ENV: json.dumps(
                {os.path.basename(step_dirs[0].rstrip("/")): self.key(step_dirs[0])})}
        parents = {os.path.dirname(d.rstrip("/")) for d in step_dirs}
        return {RESULT_KEYS_ENV: json.dumps(
            {GROUP_SEEDS: {os.path.basename(p): self.seed(p) for p in sorted(parents)}})}

