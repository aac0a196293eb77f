"""Global settings: dflow's ``config`` and ``s3_config``, and where hpcflow keeps its state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpcflow.errors import HpcflowError
from hpcflow.home_check import check_home_path, check_home_writable


def dflow_env_settings() -> dict[str, Any]:
    """``mode`` and ``detach`` as dflow reads them from its environment variables when
    imported (``DFLOW_MODE=debug pytest``)."""
    return {"mode": os.environ.get("DFLOW_MODE", "default"),
            "detach": os.environ.get("DFLOW_DETACH", "").lower() in ("1", "true", "yes")}


#: dflow-compatible settings. hpcflow always runs through its own engine; with ``mode``
#: "debug" (dflow's local mode) ``submit()`` returns when the workflow is over, unless
#: ``detach``, as dflow's does.
config: dict[str, Any] = {
    **dflow_env_settings(),
    "home": None,
    "local_parallelism": None,
    "archive_mode": "tar",
    "engine_idle_exit": float(os.environ.get("HPCFLOW_ENGINE_IDLE_EXIT", "600")),
    "max_recursion_depth": 100,
    # False for cron/scrontab set-ups: submissions only wait for the next `hpcflow daemon tick`.
    "engine_autostart": os.environ.get("HPCFLOW_ENGINE_AUTOSTART", "1") not in ("0", "false"),
}

#: dflow's artifact-repository settings. ``storage_client`` may hold any StorageClient.
s3_config: dict[str, Any] = {
    "endpoint": None,
    "console": None,
    "access_key": None,
    "secret_key": None,
    "secure": True,
    "bucket_name": None,
    "repo_key": None,
    "repo": None,
    "repo_type": "local",
    "repo_prefix": "",
    "prefix": "",
    "storage_client": None,
}


def _home_setting() -> tuple[str, str, str]:
    """(the home as given, what gave it, what to do about it) for ``home()``."""
    if config.get("home") is not None:
        return str(config["home"]), 'config["home"]', 'set config["home"] to a directory of yours'
    given = os.environ.get("HPCFLOW_HOME")
    todo = "set HPCFLOW_HOME to a directory of yours, or unset it for ~/.hpcflow"
    if given is None:
        return "~/.hpcflow", "the default home", "set HPCFLOW_HOME to a directory of yours"
    return given, "HPCFLOW_HOME", todo


def home() -> Path:
    """``config["home"]``, else ``$HPCFLOW_HOME``, else ``~/.hpcflow``: its real path, once
    it was found usable (``check_home_path``, ``check_home_writable``: one line naming it
    and what to do otherwise) and every directory on the way passed ``hpcflow.privacy``'s
    ownership rule."""
    from hpcflow.privacy import secure_home, trusted_path

    given, what, todo = _home_setting()
    if given.strip():  # who owns the way there first (it only reads): that names an attack
        path = os.path.abspath(os.path.expanduser(given))
        # the home itself, if a directory, is secure_home's (one of the user's is tightened)
        trusted_path(path if os.path.islink(path) else os.path.dirname(path),
                     what=f"{what} {path}")
    path, _ = check_home_path(given, what, todo)
    real = secure_home(path, create=False)
    check_home_writable(path, real, what, todo)
    return real


def local_parallelism() -> int:
    value = config.get("local_parallelism") or os.environ.get("HPCFLOW_LOCAL_PARALLELISM")
    return max(1, int(value)) if value else (os.cpu_count() or 1)


#: dflow's keys that mean "artifacts go to S3" when a script sets them.
_S3_KEYS = ("endpoint", "bucket_name", "access_key", "secret_key")
_storage_cache: tuple[Any, Any] | None = None


def _s3_from_dflow_config() -> Any:
    from hpcflow.connectors.storage.s3 import S3StorageClient

    if not s3_config.get("bucket_name"):
        raise HpcflowError("s3_config['bucket_name'] is not set: name the bucket artifacts "
                           "go to (with s3_config['endpoint'] for a non-AWS store)")
    return S3StorageClient(
        bucket=s3_config["bucket_name"], endpoint=s3_config.get("endpoint"),
        secure=bool(s3_config.get("secure", True)),
        prefix=s3_config.get("prefix") or s3_config.get("repo_prefix") or "",
        access_key=s3_config.get("access_key"), secret_key=s3_config.get("secret_key"),
        region=s3_config.get("region"))


def storage_client() -> Any:
    """The storage client artifacts go through: ``s3_config["storage_client"]``, else S3 when
    the script set dflow's S3 keys (``endpoint``, ``bucket_name``, ...), else the config
    file's ``[storage]``, else the local directory ``$HPCFLOW_HOME/artifacts``."""
    global _storage_cache
    client = s3_config.get("storage_client")
    if client is not None:
        return client
    from hpcflow.config_file import load_config

    wanted = (tuple((k, s3_config.get(k)) for k in sorted(s3_config) if k != "storage_client"),
              str(home()))
    if _storage_cache is not None and _storage_cache[0] == wanted:
        return _storage_cache[1]
    if any(s3_config.get(k) for k in _S3_KEYS):
        client = _s3_from_dflow_config()
    else:
        table = dict(load_config(home()).storage)
        kind = table.pop("kind", "local")
        if kind == "s3":
            from hpcflow.connectors.storage.s3 import S3StorageClient

            client = S3StorageClient(**table)
        else:
            from hpcflow.connectors.storage.local import LocalStorageClient

            root = table.get("root")
            client = LocalStorageClient(os.path.expanduser(root) if root
                                        else home() / "artifacts")
    _storage_cache = (wanted, client)
    return client


def storage_spec() -> dict[str, Any]:
    """How a step process and the engine rebuild the storage client (no secrets)."""
    client = storage_client()
    try:
        spec: dict[str, Any] = client.to_spec()
        return spec
    except NotImplementedError:
        import base64

        import cloudpickle

        return {"kind": "pickle", "data": base64.b64encode(cloudpickle.dumps(client)).decode()}
