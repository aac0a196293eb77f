"""The ``argo`` executor kind: container steps offloaded to an Argo Workflows cluster of the
config file (``[argo.NAME]``), registered in the ``hpcflow.executors`` entry-point group.

It brings everything hpcflow needs of it: the parser of its config section, the placement
of a step's ``ArgoExecutor(cluster=...)`` (and, with ``images = true``, of every step whose
template has an image and no executor: dflow's style), the executor, its log reader and its
``doctor`` checks.

>>> ARGO.placement({"kind": "argo", "cluster": "k8s", "resources": {"cpu": "2"}})
('k8s', {'cpu': '2'})
>>> ARGO.declaration({"kind": "argo", "cluster": "k8s"})
('argo', 'k8s')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hpcflow.connectors.executors.argo_config import SECTION, ArgoCluster, parse_cluster
from hpcflow.connectors.plugins import ExecutorContext
from hpcflow.errors import HpcflowError

if TYPE_CHECKING:
    from hpcflow.config_file import DaemonConfig, PollBounds
    from hpcflow.connectors.executors.argo import ArgoExecutor
    from hpcflow.connectors.executors.base import Executor, JobRecord
    from hpcflow.connectors.transports.base import Transport

#: The kind's name, as the author side writes it into a step's executor spec.
ARGO_KIND = "argo"


def cluster_of(config: DaemonConfig, name: str) -> ArgoCluster:
    cluster = config.sections.get(SECTION, {}).get(name)
    if cluster is None:
        raise HpcflowError(f"no Argo cluster {name!r} in the config file "
                           f"({config.path or 'none'}): declare it as [argo.{name}]")
    return cluster


def make_argo_executor(context: ExecutorContext, name: str) -> ArgoExecutor:
    """The executor of the cluster ``[argo.NAME]``: its client (the token read now, from
    its file or secret), and the exchange bucket of ``[storage]``."""
    from hpcflow.connectors.executors.argo import ArgoExecutor
    from hpcflow.connectors.executors.argo_client import ArgoClient
    from hpcflow.connectors.executors.argo_config import read_token
    from hpcflow.connectors.executors.argo_manifest import S3Location

    cluster = cluster_of(context.config, name)
    storage = dict(context.config.storage)
    if storage.get("kind") != "s3":
        raise HpcflowError(f"Argo cluster {name} exchanges step files through an S3 bucket "
                           "that the daemon and the cluster both reach: configure it as "
                           "[storage] with kind = \"s3\" (config/README.md)")
    if not cluster.artifact_secret:
        raise HpcflowError(f"[argo.{name}] needs artifact_secret: the Kubernetes Secret that "
                           "holds [storage]'s S3 keys for the pods (manifests/argo/s3-secret.yaml)")
    endpoint = str(storage.get("endpoint") or "s3.amazonaws.com")
    secure = storage.get("secure", True) is not False and not endpoint.startswith("http://")
    host = cluster.artifact_endpoint or endpoint.split("://", 1)[-1].rstrip("/")
    from hpcflow.connectors.storage.s3 import normal_prefix

    s3 = S3Location(bucket=str(storage["bucket"]), endpoint=host, insecure=not secure,
                    secret=cluster.artifact_secret, access_key=cluster.artifact_access_key,
                    secret_key=cluster.artifact_secret_key,
                    prefix=normal_prefix(storage.get("prefix")))
    client = ArgoClient(cluster, read_token(cluster, context.home))
    return ArgoExecutor(cluster, client, storage, s3, context.home, context.result_keys)


class ArgoKind:
    name = ARGO_KIND
    late_logs = False
    what = "Argo cluster"
    #: The config file's table this kind owns (``[argo.NAME]``).
    section = SECTION

    def parse_section(self, name: str, table: Any) -> ArgoCluster:
        return parse_cluster(name, table)

    def poll_bounds(self, parsed: ArgoCluster) -> PollBounds:
        return parsed.poll

    def placement(self, wanted: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(wanted["cluster"]), dict(wanted.get("resources") or {})

    def declares(self, config: DaemonConfig, name: str) -> bool:
        return name in config.sections.get(SECTION, {})

    def declaration(self, wanted: dict[str, Any]) -> tuple[str, str] | None:
        return SECTION, str(wanted["cluster"])

    def claims(self, config: DaemonConfig, template: dict[str, Any]) -> dict[str, Any] | None:
        """dflow's style: a step without an executor whose template names an image runs on
        the cluster that says ``images = true`` (the executor spec it gets), else None."""
        if not template.get("image"):
            return None
        for name, cluster in sorted(config.sections.get(SECTION, {}).items()):
            if cluster.images:
                return {"kind": ARGO_KIND, "cluster": name, "resources": {}}
        return None

    def template_problem(self, template: dict[str, Any]) -> str | None:
        if template.get("image"):
            return None
        return ("an Argo cluster runs container steps only: give its template an image= "
                "(e.g. PythonOPTemplate(op, image='python:3.11'))")

    def make(self, context: ExecutorContext, name: str,
             described: dict[str, Any] | None) -> Executor:
        executor: Executor = make_argo_executor(context, name)
        return executor

    def log_transport(self, context: ExecutorContext, name: str,
                      described: dict[str, Any] | None) -> Transport | None:
        return None

    def read_log(self, context: ExecutorContext, name: str, job: JobRecord) -> str | None:
        """The step's log, from its pod through the Argo Server, or the copy in the bucket."""
        executor = make_argo_executor(context, name)
        try:
            return executor.read_log(job)
        finally:
            executor.close()

    def checks(self, context: ExecutorContext, name: str) -> Iterator[str]:
        """``hpcflow doctor NAME``: what passed, in order; an ``HpcflowError`` at the first
        check that fails."""
        executor = make_argo_executor(context, name)
        cluster = executor.cluster
        try:
            version = executor.client.version().get("version") or "unknown"
            yield f"Argo Server {cluster.server} reachable (version {version})"
            executor.client.list_workflows("hpcflow.io/doctor=probe", "items.metadata.name",
                                           limit=1)
            yield (f"token accepted; workflows may be listed in namespace "
                   f"{cluster.namespace!r}")
            yield (f"artifacts through s3://{executor.s3.bucket}/{executor.s3.prefix} at "
                   f"{executor.s3.endpoint}, keys from the Secret {executor.s3.secret!r}")
        finally:
            executor.close()


ARGO = ArgoKind()
