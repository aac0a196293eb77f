"""dflow's names for things that exist only on Kubernetes and Argo.

Where a script can use one without it mattering here, it is accepted: ``DockerSecret``
(images are pulled on the machine with its own registry login), ``PVC`` (dflow's volume
claims: ``hpcflow.io``, where a step's ``.pvc()`` makes one) and ``LineageClient`` (no
lineage is recorded). The others would change what a workflow does, so they are refused when
made, in one line that says why and what to use instead.
"""

from __future__ import annotations

from typing import Any

from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import PVC  # noqa: F401  (dflow keeps it in dflow.io; so does hpcflow)
from hpcflow.templates import OPTemplate


class Secret:
    """dflow's Kubernetes secret: refused (there is no cluster to keep it)."""

    def __init__(self, value: Any = None, name: str | None = None, key: str = "secret") -> None:
        raise WorkflowDefinitionError(
            "Secret(...) creates a Kubernetes secret, and hpcflow runs no Kubernetes: read "
            "the value in the step from a file only you can read, or from the environment")


class DockerSecret:
    """dflow's registry credentials for pulling images (``Workflow(image_pull_secrets=)``):
    accepted, not used and never stored; images are pulled on the machine that runs the step,
    with its own login (``docker login``, ``apptainer registry login``)."""

    def __init__(self, registry: str, username: str, password: str,
                 name: str | None = None) -> None:
        self.registry, self.username, self.name = registry, username, name
        self.password = password

    def __repr__(self) -> str:
        return f"DockerSecret(registry={self.registry!r}, username={self.username!r})"


class LineageClient:
    """dflow's lineage client base: accepted as ``config["lineage"]``; hpcflow records no
    lineage (its store keeps every step's inputs and outputs)."""

    def register_workflow(self, workflow_name: str) -> str:
        raise NotImplementedError

    def register_artifact(self, namespace: str, name: str, uri: str, **kwargs: Any) -> str:
        raise NotImplementedError

    def register_task(self, task_name: str, input_urns: dict, output_uris: dict,
                      workflow_urn: str) -> dict:
        raise NotImplementedError

    def get_artifact_metadata(self, urn: str) -> object:
        raise NotImplementedError


class HookStep:
    """dflow's Argo lifecycle hook: refused."""

    def __init__(self, template: Any = None, expression: str | None = None,
                 **kwargs: Any) -> None:
        raise WorkflowDefinitionError(
            "HookStep is an Argo lifecycle hook, which hpcflow does not have: add the step to "
            "the workflow after the steps it watches, with when= for its condition")


class HTTPOPTemplate(OPTemplate):
    """dflow's Argo HTTP template (run by Argo's agent pod): refused."""

    def __init__(self, url: str = "", *args: Any, **kwargs: Any) -> None:
        raise WorkflowDefinitionError(
            "HTTPOPTemplate is run by Argo's HTTP agent in Kubernetes, which hpcflow does not "
            "have: make the request in a Python OP (urllib.request)")
