"""hpcflow: dflow's workflow API, run HPC-first by a SQLite-backed engine.

Names are imported lazily so that the in-job runner (``python -m
hpcflow.daemon.runner``), which starts once per step, imports only what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

# ``hpcflow.config`` is dflow's settings module (``from hpcflow.config import config``); once
# it is imported, the package's ``config`` name is the dictionary, as in dflow, so that
# ``from hpcflow import config`` keeps giving the dict (settings imports only os and pathlib).
from hpcflow import config as _config_module  # noqa: F401
from hpcflow.settings import config as config
from hpcflow.settings import s3_config as s3_config

__version__ = "0.1.0"

_EXPORTS = {
    "Workflow": "hpcflow.workflow",
    "Step": "hpcflow.step",
    "Task": "hpcflow.step",
    "Steps": "hpcflow.steps",
    "DAG": "hpcflow.steps",
    "ShellOPTemplate": "hpcflow.templates",
    "PythonScriptOPTemplate": "hpcflow.templates",
    "OPTemplate": "hpcflow.templates",
    "InputParameter": "hpcflow.io",
    "OutputParameter": "hpcflow.io",
    "InputArtifact": "hpcflow.io",
    "OutputArtifact": "hpcflow.io",
    "Inputs": "hpcflow.io",
    "Outputs": "hpcflow.io",
    "upload_artifact": "hpcflow.artifacts",
    "download_artifact": "hpcflow.artifacts",
    "S3Artifact": "hpcflow.artifacts",
    "LocalArtifact": "hpcflow.artifacts",
    "copy_artifact": "hpcflow.utils",
    "copy_s3": "hpcflow.utils",
    "download_s3": "hpcflow.utils",
    "upload_s3": "hpcflow.utils",
    "path_list_of_artifact": "hpcflow.utils",
    "path_object_of_artifact": "hpcflow.utils",
    "randstr": "hpcflow.utils",
    "set_config": "hpcflow.config",
    "set_s3_config": "hpcflow.config",
    "ArgoStep": "hpcflow.argo_objects",
    "ArgoWorkflow": "hpcflow.argo_objects",
    "query_workflows": "hpcflow.argo_objects",
    "query_archived_workflows": "hpcflow.argo_objects",
    "argo_range": "hpcflow.expressions",
    "argo_sequence": "hpcflow.expressions",
    "argo_len": "hpcflow.expressions",
    "if_expression": "hpcflow.expressions",
    "IfExpression": "hpcflow.io",
    "argo_sum": "hpcflow.expressions",
    "argo_concat": "hpcflow.expressions",
    "argo_enumerate": "hpcflow.expressions",
    "HpcflowError": "hpcflow.errors",
    "SlurmExecutor": "hpcflow.executors",
    "PBSExecutor": "hpcflow.executors",
    "LSFExecutor": "hpcflow.executors",
    "SGEExecutor": "hpcflow.executors",
    "ArgoExecutor": "hpcflow.executors",
    "DispatcherExecutor": "hpcflow.connectors.dispatcher",
    "Executor": "hpcflow.executor",
    "Resource": "hpcflow.executor",
    "RemoteExecutor": "hpcflow.executor",
    "ContainerExecutor": "hpcflow.executor",
    "SlurmRemoteExecutor": "hpcflow.slurm",
    "SlurmJobTemplate": "hpcflow.slurm",
    "SlurmJob": "hpcflow.slurm",
    "Secret": "hpcflow.kubernetes_only",
    "DockerSecret": "hpcflow.kubernetes_only",
    "HookStep": "hpcflow.kubernetes_only",
    "HTTPOPTemplate": "hpcflow.kubernetes_only",
    "LineageClient": "hpcflow.kubernetes_only",
}

__all__ = sorted([*_EXPORTS, "config", "s3_config"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hpcflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
