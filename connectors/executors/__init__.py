"""Executors: where a step's job runs. Each is one module behind the ``Executor`` protocol."""

from hpcflow.connectors.executors.base import Executor, JobRecord, JobStatus

__all__ = ["Executor", "JobRecord", "JobStatus"]
