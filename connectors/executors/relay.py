"""Artifacts and code for a machine that does not share the daemon's files (SSH).

The job cannot reach the daemon's artifact storage, so the daemon relays: before the job,
the objects of its input artifacts go into ``STEP_DIR/.relay`` on the machine and the job's
storage becomes that directory (a local storage client there); after the job, the objects of
its output artifacts come back into the real storage under the same keys. Archives (the
default) are one object per artifact, so a tree moves as one file. The runner itself is
shipped as a zip (``bundle.py``) and put on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpcflow.artifact_files import staging_dir
from hpcflow.connectors.executors.base import JobSpec
from hpcflow.connectors.executors.bundle import runner_bundle
from hpcflow.connectors.storage.base import check_key, storage_from_spec
from hpcflow.connectors.transports.base import Transport, TransportError
from hpcflow.errors import HpcflowError

RELAY_DIR = ".relay"
#: The daemon relays on its own loop: an object store that is down must not hold it for the
#: storage's full retry time. After this long the relay gives up for now and the step is
#: tried again at the next submission or poll, as when the machine cannot be reached.
RELAY_RETRY_SECONDS = 15.0


def relay_storage(spec: dict[str, Any]) -> Any:
    """The storage client the daemon relays through (retrying for a short while only)."""
    storage: Any = storage_from_spec(spec)
    if getattr(storage, "retry_seconds", None) is not None:
        storage.retry_seconds = min(storage.retry_seconds, RELAY_RETRY_SECONDS)
    return storage


@contextlib.contextmanager
def outage_is_unreachable() -> Iterator[None]:
    """An object store that stays down while relaying: like a machine that cannot be
    reached (``TransportError``: retried later, never a step failure)."""
    from hpcflow.connectors.storage.s3_retry import StorageUnavailableError

    try:
        yield
    except StorageUnavailableError as exc:
        raise TransportError(str(exc)) from exc


def _object_keys(storage: Any, ref: dict) -> list[str]:
    keys: list[str] = []
    for part in ref.get("parts", []):
        key = check_key(part["key"])
        if part.get("archive") == "tar":
            keys.append(key)
        else:
            listed = f"{key}/{part['sub']}" if part.get("sub") else key
            keys += storage.list(listed, recursive=True)
    return keys


def _put_objects(transport: Transport, root: str, storage: Any, keys: list[str]) -> None:
    by_dir: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="hpcflow-relay-", dir=staging_dir()) as tmp:
        for key in keys:
            local = Path(tmp) / "object"
            storage.download(check_key(key), str(local))
            folder, name = posixpath.split(posixpath.join(root, key))
            by_dir.setdefault(folder, {})[name] = local.read_bytes()
    for folder, files in by_dir.items():
        transport.write_files(folder, files)


def put_inputs(transport: Transport, relay: str, job: JobSpec) -> None:
    """Copy the objects of the step's input artifacts from its storage into ``relay``."""
    refs = [ref for ref in (job.runner.get("inputs", {}).get("artifacts") or {}).values()
            if ref]
    if not refs:
        return  # no storage client made (it costs a session)
    storage = relay_storage(job.storage)
    with outage_is_unreachable():
        keys = [k for ref in refs for k in _object_keys(storage, ref)]
        _put_objects(transport, relay, storage, keys)


def relayed(job: JobSpec, relay_root: str) -> JobSpec:
    """``job`` reading and writing its artifacts in ``relay_root`` (a plain directory where
    it runs), the daemon carrying them to and from its real storage (``relay_to``)."""
    return job.with_runner(relay_to=job.storage, storage={"kind": "local", "root": relay_root})


def prepare_remote_job(transport: Transport, work_root: str, job: JobSpec, shipped: set[str],
                       relay: bool = True, ship: bool = True) -> tuple[JobSpec, list[str]]:
    """The job as it runs on a machine that does not see the daemon's files (or runs the
    step in a container), and the job script lines it needs there: with ``relay``, its
    storage pointed at the relay (inputs put there); with ``ship``, hpcflow's runner shipped
    and put on ``PYTHONPATH`` (``shipped`` remembers the bundles already on the machine)."""
    if relay:
        relay_dir = f"{job.step_dir}/{RELAY_DIR}"
        put_inputs(transport, relay_dir, job)
        job = relayed(job, relay_dir)
    prepare: list[str] = []
    if ship:
        job = job.with_runner(wake_dir=None)  # the daemon's wake directory is not there
        bundle = ship_runner(transport, work_root, shipped)
        prepare = [f"export PYTHONPATH={shlex.quote(bundle)}${{PYTHONPATH:+:$PYTHONPATH}}"]
    return job, prepare


def ship_runner(transport: Transport, work_root: str, shipped: set[str]) -> str:
    """Put this hpcflow's runner bundle under ``work_root/.hpcflow`` (once); its path."""
    name, data = runner_bundle()
    bundle = f"{work_root}/.hpcflow/{name}"
    if bundle not in shipped:
        if transport.read_file(bundle, max_bytes=1) is None:
            transport.write_files(posixpath.dirname(bundle), {name: data})
        shipped.add(bundle)
    return bundle


def bring_back_outputs(transport: Transport, step_dir: str, outputs: dict | None) -> None:
    """Copy the objects of a finished job's output artifacts from its relay into storage
    (nothing to do for a job that was not relayed)."""
    artifacts = (outputs or {}).get("artifacts") or {}
    if not artifacts:
        return
    raw = transport.read_file(f"{step_dir}/step.json")
    if raw is None:
        raise HpcflowError(f"{step_dir}/step.json is gone: cannot bring the outputs back")
    job = json.loads(raw)
    if "relay_to" not in job:
        return  # the job wrote to the storage itself
    storage = relay_storage(job["relay_to"])
    relay = f"{step_dir}/{RELAY_DIR}"
    with outage_is_unreachable(), \
            tempfile.TemporaryDirectory(prefix="hpcflow-relay-", dir=staging_dir()) as tmp:
        local = Path(tmp) / "object"
        for ref in artifacts.values():
            for part in (ref or {}).get("parts", []):
                base = f"{relay}/{check_key(part['key'])}"
                for path in transport.list_files(base):
                    data = transport.read_file(path)
                    if data is None:
                        raise HpcflowError(f"output object {path} vanished on the machine")
                    local.write_bytes(data)
                    storage.upload(check_key(path[len(relay) + 1:]), str(local))


_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def storage_env(storage: dict[str, Any]) -> dict[str, str]:
    """The variables a job needs to reach its storage itself (S3 credentials), from what
    the daemon would use. Nothing for a local directory."""
    if storage.get("kind") != "s3":
        return {}
    client = storage_from_spec(storage)
    env: dict[str, str] = client.credentials_env()  # type: ignore[attr-defined]
    return env


def with_environment(argv: list[str], env: dict[str, str]) -> tuple[list[str], str]:
    """``argv`` wrapped so that it runs with ``env`` added to its environment, and the text
    to feed its standard input: the values travel through the pipe (or the SSH channel), so
    they never appear on a command line (``ps``) or in a file."""
    names = sorted(env)
    for name in names:
        if not _VARIABLE.match(name) or "\n" in env[name] or "\0" in env[name]:
            raise HpcflowError(f"cannot pass the variable {name!r} to a job: its name or "
                               "value is not a single line")
    reads = "".join(f"IFS= read -r {name} && export {name} && " for name in names)
    return ["/bin/sh", "-c", reads + 'exec "$@"', "sh", *argv], \
        "".join(f"{env[name]}\n" for name in names)
