"""``[argo.NAME]``: an Argo Workflows cluster that container steps are offloaded to.

Read by the ``argo`` executor kind (``argo_kind.py``) when the config file is parsed. The
token is read from a private file (``token_file``, 0600, the user's) or a secret reference
(``token_secret``, under ``$HPCFLOW_HOME/secrets``) only when the executor is made: the
parsed config holds where it is, never the token, so it reaches no store, log or job spec.

>>> c = parse_cluster("k8s", {"server": "https://argo.example.org:2746", "namespace": "hpc",
...     "token_file": "~/.hpcflow/secrets/argo.token", "artifact_secret": "hpcflow-s3",
...     "cpu": "2", "node_selector": {"pool": "cpu"}})
>>> c.namespace, c.verify_tls, c.pod_defaults["cpu"], c.max_workflows
('hpc', True, '2', 100)
>>> parse_cluster("k8s", {"server": "argo:2746", "namespace": "hpc", "token_file": "t"})
Traceback (most recent call last):
...
hpcflow.config_file.ConfigError: argo.k8s.server must be an http(s) URL (...), not 'argo:2746'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.config_file import (
    ConfigError,
    PollBounds,
    check_keys,
    number,
    read_poll_bounds,
    text,
)

#: The config file's table of Argo clusters.
SECTION = "argo"
#: Pod settings a cluster gives every step by default and a step's ``ArgoExecutor`` overrides.
POD_KEYS = ("cpu", "memory", "gpus", "requests", "limits", "node_selector", "tolerations",
            "service_account", "image_pull_policy", "envs")
CLUSTER_KEYS = ("server", "namespace", "token_file", "token_secret", "verify_tls", "ca_bundle",
                "artifact_secret", "artifact_access_key", "artifact_secret_key",
                "artifact_endpoint", "max_workflows", "min_poll_interval",
                "max_poll_interval", "python", "images", "ttl_seconds", *POD_KEYS)
#: Argo's own polling is not the local process table: ask the Argo Server less often.
ARGO_POLL = PollBounds(2.0, 30.0)
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ArgoCluster:
    """One ``[argo.NAME]`` table, checked."""

    name: str
    server: str
    namespace: str
    #: Where the bearer token is: a private file, or the name of one in the home's secrets/.
    token_file: str | None = None
    token_secret: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    #: The Kubernetes Secret that holds the S3 keys of ``[storage]`` for the pods, and the
    #: names of its two keys.
    artifact_secret: str | None = None
    artifact_access_key: str = "accesskey"
    artifact_secret_key: str = "secretkey"
    #: The S3 endpoint as the pods reach it (``host:port``), if not ``[storage]``'s.
    artifact_endpoint: str | None = None
    max_workflows: int = 100
    poll: PollBounds = ARGO_POLL
    #: The images' Python (hpcflow's runner is shipped; the image needs a Python of the
    #: daemon's minor version and the OP's imports).
    python: str = "python3"
    #: dflow's style: steps with ``image=`` and no executor run here.
    images: bool = False
    #: Finished Argo Workflows left behind (the daemon gone) are removed after this long.
    ttl_seconds: int = 86400
    #: Pod settings every step gets unless its ``ArgoExecutor`` says otherwise.
    pod_defaults: dict[str, Any] = field(default_factory=dict)


def parse_cluster(name: str, table: Any) -> ArgoCluster:
    where = f"{SECTION}.{name}"
    if isinstance(table, dict) and "token" in table:
        raise ConfigError(f"{where}.token: keep the token out of the config file; put it in "
                          "a 0600 file and name it with token_file")
    table = check_keys(table, CLUSTER_KEYS, where)
    server = text(table, "server", where)
    if server is None or not re.match(r"^https?://[^/\s]+", server):
        raise ConfigError(f"{where}.server must be an http(s) URL (https://HOST:2746), not "
                          f"{server!r}")
    namespace = text(table, "namespace", where)
    if namespace is None or not _K8S_NAME.match(namespace):
        raise ConfigError(f"{where}.namespace must be a Kubernetes namespace name, not "
                          f"{namespace!r}")
    token_file, token_secret = text(table, "token_file", where), text(table, "token_secret",
                                                                       where)
    if (token_file is None) == (token_secret is None):
        raise ConfigError(f"{where} needs one of token_file (a 0600 file holding the "
                          "ServiceAccount's token) or token_secret (the name of such a file "
                          "in $HPCFLOW_HOME/secrets)")
    if token_secret is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*",
                                                     token_secret):
        raise ConfigError(f"{where}.token_secret must be a file name in $HPCFLOW_HOME/secrets, "
                          f"not {token_secret!r}")
    flags = {}
    for key in ("verify_tls", "images"):
        if key in table and not isinstance(table[key], bool):
            raise ConfigError(f"{where}.{key} must be true or false")
        flags[key] = table.get(key)
    pull = table.get("image_pull_policy")
    if pull is not None and pull not in PULL_POLICIES:
        raise ConfigError(f"{where}.image_pull_policy must be one of "
                          f"{', '.join(PULL_POLICIES)}, not {pull!r}")
    pods = check_pod_settings({k: table[k] for k in POD_KEYS if k in table}, where)
    return ArgoCluster(
        name=name, server=server.rstrip("/"), namespace=namespace, token_file=token_file,
        token_secret=token_secret, verify_tls=flags["verify_tls"] is not False,
        ca_bundle=text(table, "ca_bundle", where),
        artifact_secret=text(table, "artifact_secret", where),
        artifact_access_key=text(table, "artifact_access_key", where) or "accesskey",
        artifact_secret_key=text(table, "artifact_secret_key", where) or "secretkey",
        artifact_endpoint=text(table, "artifact_endpoint", where),
        max_workflows=int(number(table, "max_workflows", where, integer=True))
        if "max_workflows" in table else 100,
        poll=read_poll_bounds(table, where, ARGO_POLL),
        python=text(table, "python", where) or "python3",
        images=bool(flags["images"]),
        ttl_seconds=int(number(table, "ttl_seconds", where, integer=True))
        if "ttl_seconds" in table else 86400,
        pod_defaults=pods)


def check_pod_settings(pods: dict[str, Any], where: str) -> dict[str, Any]:
    """Pod settings (a cluster's defaults, a step's ``ArgoExecutor``) in the shapes
    Kubernetes takes; one line naming the key otherwise."""
    for key in ("cpu", "memory", "gpus"):
        if key in pods and (not isinstance(pods[key], str | int | float)
                            or isinstance(pods[key], bool)):
            raise ConfigError(f"{where}.{key} must be a quantity (\"2\", \"500m\", \"4Gi\"), "
                              f"not {pods[key]!r}")
    for key in ("requests", "limits", "node_selector", "envs"):
        value = pods.get(key)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, str | int | float)
                and not isinstance(v, bool) for k, v in value.items())):
            raise ConfigError(f"{where}.{key} must be a table of names to values, not "
                              f"{value!r}")
    tolerations = pods.get("tolerations")
    if tolerations is not None and not (isinstance(tolerations, list) and all(
            isinstance(t, dict) for t in tolerations)):
        raise ConfigError(f"{where}.tolerations must be a list of tables ({{key, operator, "
                          f"value, effect}}), not {tolerations!r}")
    account = pods.get("service_account")
    if account is not None and not (isinstance(account, str) and _K8S_NAME.match(account)):
        raise ConfigError(f"{where}.service_account must be a ServiceAccount name, not "
                          f"{account!r}")
    return dict(pods)


def read_token(cluster: ArgoCluster, home: Path) -> str:
    """The cluster's bearer token, from its private file (``token_file``, or
    ``token_secret`` in the home's ``secrets/``)."""
    from hpcflow.privacy import UntrustedPathError, check_private_file
    from hpcflow.secrets import SECRETS_DIR

    key = "token_secret" if cluster.token_secret is not None else "token_file"
    path = home / SECRETS_DIR / str(cluster.token_secret) if cluster.token_secret is not None \
        else Path(str(cluster.token_file)).expanduser()
    try:
        check_private_file(path, f"argo.{cluster.name}.{key}")
    except UntrustedPathError as exc:
        raise ConfigError(str(exc)) from None
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"argo.{cluster.name}.{key} {path} can be read by others: "
                              f"chmod 600 {path}")
        token = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"argo.{cluster.name}.{key} {path} does not exist: write the "
                          "ServiceAccount's token there (manifests/argo/README.md)") from None
    if not token:
        raise ConfigError(f"argo.{cluster.name}.{key} {path} is empty")
    return token
