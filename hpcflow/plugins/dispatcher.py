"""dflow's ``dflow.plugins.dispatcher``: ``from hpcflow.plugins.dispatcher import
DispatcherExecutor`` (the literal rename of dflow's import)."""

from hpcflow.connectors.dispatcher import DispatcherExecutor

__all__ = ["DispatcherExecutor"]
