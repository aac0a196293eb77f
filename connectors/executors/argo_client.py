"""The Argo Server's REST API through the ``argo-workflows`` SDK, with hpcflow's errors.

Answers are read as JSON, not as the SDK's models: those reject what real servers send
(null timestamps, integer ``retryStrategy.limit``). What can go wrong is said in one line:

- the server cannot be reached, or answers 5xx: ``TransportError`` (the cluster is
  unreachable for now, like an SSH machine: retried, no step fails);
- 401/403: ``ArgoAccessError``, naming the token's file and the namespace;
- 409 on create: the Workflow exists already (``create`` returns False: adopted, not sent
  twice); 404: None or nothing to do.

The token goes only into the ``Authorization`` header; it is never logged or put in an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from hpcflow.connectors.executors.argo_config import ArgoCluster
from hpcflow.connectors.transports.base import TransportError
from hpcflow.errors import HpcflowError

T = TypeVar("T")
#: (connect, read) seconds of one call: a stuck server is an unreachable one.
CALL_TIMEOUT = (5.0, 30.0)


class ArgoAccessError(HpcflowError):
    """The Argo Server refused hpcflow's token (401) or what it asked (403)."""


class AlreadyExists(HpcflowError):
    """409: a Workflow of that name exists."""


def _message(exc: Any) -> str:
    """The grpc-gateway's ``message`` of an error answer (its whole body otherwise)."""
    body = getattr(exc, "body", None) or b""
    try:
        data = json.loads(body)
        text = str(data.get("message") or data)
    except (ValueError, AttributeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return " ".join(text.split())[:300] or str(getattr(exc, "reason", "") or "")


class ArgoClient:
    def __init__(self, cluster: ArgoCluster, token: str) -> None:
        try:
            from argo_workflows import ApiClient, Configuration
            from argo_workflows.api.info_service_api import InfoServiceApi
            from argo_workflows.api.workflow_service_api import WorkflowServiceApi
        except ImportError:
            raise HpcflowError(f"Argo cluster {cluster.name} needs the argo-workflows package "
                               "where the daemon runs: pip install 'hpcflow[argo]'") from None

        self.cluster = cluster
        config = Configuration(host=cluster.server)
        config.api_key["BearerToken"] = token
        config.api_key_prefix["BearerToken"] = "Bearer"
        config.verify_ssl = cluster.verify_tls
        if cluster.ca_bundle:
            config.ssl_ca_cert = cluster.ca_bundle
        config.retries = 0  # the service retries on its next poll; a call never blocks long
        self._api = ApiClient(config)
        self._workflows = WorkflowServiceApi(self._api)
        self._info = InfoServiceApi(self._api)

    @property
    def _token_source(self) -> str:
        c = self.cluster
        return f"token_file {c.token_file}" if c.token_file else \
            f"token_secret {c.token_secret} (in $HPCFLOW_HOME/secrets)"

    def _call(self, what: str, call: Callable[[], Any], missing_ok: bool = False) -> Any:
        """``call``'s answer as JSON (None for a 404 when ``missing_ok``)."""
        import urllib3
        from argo_workflows.exceptions import ApiException

        c = self.cluster
        try:
            response = call()
        except ApiException as exc:
            status = exc.status or 0
            if status == 404 and missing_ok:
                return None
            if status == 409:
                raise AlreadyExists(_message(exc)) from None
            if status == 401:
                raise ArgoAccessError(
                    f"Argo cluster {c.name} ({c.server}) refused the token of {self._token_source} "
                    f"(401 Unauthenticated: {_message(exc)}): renew it "
                    "(manifests/argo/README.md)") from None
            if status == 403:
                raise ArgoAccessError(
                    f"Argo cluster {c.name}: the token of {self._token_source} may not {what} in "
                    f"namespace {c.namespace!r} (403 PermissionDenied: {_message(exc)}): bind it "
                    "to the Role of manifests/argo/serviceaccount.yaml") from None
            if status == 0 or status >= 500:
                raise TransportError(f"Argo cluster {c.name} ({c.server}) failed to {what} "
                                     f"({status}: {_message(exc)})") from None
            raise HpcflowError(f"Argo cluster {c.name} refused to {what} ({status}: "
                               f"{_message(exc)})") from None
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise HpcflowError(
                    f"Argo cluster {c.name} ({c.server}): TLS verification failed ({reason}): "
                    f"set ca_bundle in [argo.{c.name}] to the server's CA") from None
            raise TransportError(f"the Argo Server of {c.name} ({c.server}) cannot be "
                                 f"reached: {type(reason).__name__}") from None
        if not hasattr(response, "data"):
            return response  # already read by ``call``
        return json.loads(response.data) if response.data else {}

    # -- workflows -------------------------------------------------------------------
    def create(self, manifest: dict[str, Any]) -> bool:
        """Create the Workflow; False when one of its name exists already (a crash came after
        an earlier create: that one is adopted)."""
        ns = self.cluster.namespace
        try:
            self._call("create workflows", lambda: self._workflows.create_workflow(
                ns, {"workflow": manifest}, _check_return_type=False, _preload_content=False,
                _request_timeout=CALL_TIMEOUT))
        except AlreadyExists:
            return False
        return True

    def list_workflows(self, selector: str, fields: str,
                       limit: int | None = None) -> list[dict[str, Any]]:
        """The Workflows whose labels match ``selector``, trimmed to ``fields``: one call."""
        ns = self.cluster.namespace
        extra = {"list_options_limit": str(limit)} if limit else {}
        data = self._call("list workflows", lambda: self._workflows.list_workflows(
            ns, list_options_label_selector=selector, fields=fields, _check_return_type=False,
            _preload_content=False, _request_timeout=CALL_TIMEOUT, **extra))
        return list((data or {}).get("items") or [])

    def get(self, name: str) -> dict[str, Any] | None:
        ns = self.cluster.namespace
        found: dict[str, Any] | None = self._call(
            "get workflows", lambda: self._workflows.get_workflow(
                ns, name, _check_return_type=False, _preload_content=False,
                _request_timeout=CALL_TIMEOUT), missing_ok=True)
        return found

    def terminate(self, name: str) -> None:
        ns = self.cluster.namespace
        self._call("terminate workflows", lambda: self._workflows.terminate_workflow(
            ns, name, {"name": name, "namespace": ns}, _check_return_type=False,
            _preload_content=False, _request_timeout=CALL_TIMEOUT), missing_ok=True)

    def delete(self, name: str) -> None:
        ns = self.cluster.namespace
        self._call("delete workflows", lambda: self._workflows.delete_workflow(
            ns, name, _check_return_type=False, _preload_content=False,
            _request_timeout=CALL_TIMEOUT), missing_ok=True)

    def log(self, name: str, pod_name: str | None = None,
            tail: int | None = None) -> list[tuple[str, str]] | None:
        """The pods' log lines (``main`` container) as (pod name, line); None when the
        Workflow is gone."""
        ns = self.cluster.namespace
        options: dict[str, Any] = {"log_options_container": "main"}
        if pod_name:
            options["pod_name"] = pod_name
        if tail:
            options["log_options_tail_lines"] = str(tail)

        def call() -> Any:
            response = self._workflows.workflow_logs(
                ns, name, _check_return_type=False, _preload_content=False,
                _request_timeout=CALL_TIMEOUT, **options)
            return {"lines": response.data.decode(errors="replace")}

        data = self._call("read pod logs", call, missing_ok=True)
        if data is None:
            return None
        lines = []
        for line in data["lines"].splitlines():
            try:
                result = json.loads(line)["result"]
                lines.append((str(result.get("podName") or ""), str(result["content"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return lines

    # -- the server ------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("read the version", lambda: self._info.get_version(
            _check_return_type=False, _preload_content=False, _request_timeout=CALL_TIMEOUT))
        return found

    def close(self) -> None:
        self._api.close()
