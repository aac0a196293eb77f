"""dflow's ``dflow.config`` module: ``from hpcflow.config import config, s3_config``.

``hpcflow.config`` imported as a module holds the settings dictionaries; ``from hpcflow
import config`` gives the ``config`` dictionary itself, as ``from dflow import config`` does.
Settings that only mean something to dflow's Argo back end are accepted, and said once not
to be used (``explain_unused``).
"""

from __future__ import annotations

import sys
from typing import Any

from hpcflow.settings import config, s3_config

__all__ = ["config", "explain_unused", "s3_config", "set_config", "set_s3_config"]

#: dflow settings that configure Argo or Kubernetes (hpcflow has neither); a script may set
#: them, nothing reads them.
ARGO_SETTINGS = ("host", "namespace", "token", "k8s_config_file", "k8s_api_server",
                 "private_key_host_path", "util_image", "util_image_pull_policy",
                 "extender_image", "extender_image_pull_policy", "dispatcher_image",
                 "dispatcher_image_pull_policy", "http_headers", "workflow_annotations",
                 "register_tasks", "lineage")
#: dflow's s3_config keys that describe Argo's artifact repository, not a bucket.
ARGO_S3_SETTINGS = ("console", "repo_key", "repo", "repo_type", "repo_prefix")

_explained: set[str] = set()


def set_config(**kwargs: Any) -> None:
    """Update ``config`` (dflow's ``set_config``)."""
    config.update(kwargs)


def set_s3_config(**kwargs: Any) -> None:
    """Update ``s3_config`` (dflow's ``set_s3_config``)."""
    s3_config.update(kwargs)


def unused_settings() -> list[str]:
    """The Argo-only settings this process has set, as ``config['host']`` etc."""
    found = [f"config[{k!r}]" for k in ARGO_SETTINGS if config.get(k) not in (None, "", {}, [])]
    found += [f"s3_config[{k!r}]" for k in ARGO_S3_SETTINGS
              if s3_config.get(k) not in (None, "", {}, [], "local")]
    return found


def explain_unused(where: str) -> None:
    """Say once on stderr which dflow settings are not used, and where the workflow runs;
    and, once, that dflow's S3 settings (a MinIO endpoint, ...) take the artifacts."""
    new = [name for name in unused_settings() if name not in _explained]
    if new:
        _explained.update(new)
        print(f"hpcflow: {', '.join(new)} not used: hpcflow runs this workflow on {where} "
              "(no Argo server or Kubernetes)", file=sys.stderr)
    endpoint = s3_config.get("endpoint")
    if endpoint and s3_config.get("storage_client") is None and "s3" not in _explained:
        _explained.add("s3")
        print(f"hpcflow: artifacts go to the S3 store of s3_config (endpoint {endpoint}, "
              f"bucket {s3_config.get('bucket_name')})", file=sys.stderr)
