"""Global settings: dflow's ``config`` and ``s3_config``, and where hpcflow keeps its state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: dflow-compatible settings. ``mode`` is accepted for scripts that set "debug";
#: hpcflow always runs through its own engine.
config: dict[str, Any] = {
    "mode": "default",
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


def home() -> Path:
    """``config["home"]``, else ``$HPCFLOW_HOME``, else ``~/.hpcflow``."""
    value = config.get("home") or os.environ.get("HPCFLOW_HOME") or "~/.hpcflow"
    return Path(os.path.expanduser(str(value))).absolute()


def local_parallelism() -> int:
    value = config.get("local_parallelism") or os.environ.get("HPCFLOW_LOCAL_PARALLELISM")
    return max(1, int(value)) if value else (os.cpu_count() or 1)


def storage_client() -> Any:
    """The storage client artifacts go through: ``s3_config["storage_client"]`` or local."""
    client = s3_config.get("storage_client")
    if client is not None:
        return client
    from hpcflow.connectors.storage.local import LocalStorageClient

    return LocalStorageClient(home() / "artifacts")


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
