"""hpcflow: dflow's workflow API, run HPC-first by a SQLite-backed engine.

Names are imported lazily so that the in-job runner (``python -m
hpcflow.daemon.runner``), which starts once per step, imports only what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "argo_range": "hpcflow.expressions",
    "argo_sequence": "hpcflow.expressions",
    "argo_len": "hpcflow.expressions",
    "if_expression": "hpcflow.expressions",
    "config": "hpcflow.settings",
    "s3_config": "hpcflow.settings",
    "HpcflowError": "hpcflow.errors",
    "SlurmExecutor": "hpcflow.executors",
    "PBSExecutor": "hpcflow.executors",
    "LSFExecutor": "hpcflow.executors",
    "SGEExecutor": "hpcflow.executors",
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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hpcflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
