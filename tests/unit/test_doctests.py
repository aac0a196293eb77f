"""The examples in docstrings are run, imported under their installed names."""

import doctest
import importlib

import pytest

MODULES = [
    "hpcflow.values",
    "hpcflow.names",
    "hpcflow.python.typecheck",
    "hpcflow.daemon.states",
    "hpcflow.daemon.resolve",
    "hpcflow.daemon.loops",
    "hpcflow.daemon.planner",
    "hpcflow.daemon.conditions",
    "hpcflow.daemon.client",
    "hpcflow.daemon.polling",
    "hpcflow.daemon.retry",
    "hpcflow.daemon.placement",
    "hpcflow.daemon.disk",
    "hpcflow.daemon.prune",
    "hpcflow.connectors.executors.batch",
    "hpcflow.connectors.schedulers.slurm",
    "hpcflow.connectors.schedulers.sge",
    "hpcflow.connectors.schedulers.pbs",
    "hpcflow.connectors.schedulers.lsf",
    "hpcflow.connectors.schedulers.shell",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
