"""The examples in docstrings are run, imported under their installed names.

Every module of the installed package is searched for examples (no hand-kept list to
forget a module in); a module that cannot be imported here is a failure, not a skip.
"""

import doctest
import importlib
import pkgutil

import pytest

#: The package and the two folders installed inside it (``daemon/``, ``connectors/``), which a
#: walk of ``hpcflow``'s own folder does not reach.
ROOTS = ("hpcflow", "hpcflow.daemon", "hpcflow.connectors")


def _modules_with_examples() -> list[str]:
    finder = doctest.DocTestFinder()
    found = set()
    for root in ROOTS:
        package = importlib.import_module(root)
        names = [root] + [info.name for info in
                          pkgutil.walk_packages(package.__path__, f"{root}.")]
        for name in names:
            if name.endswith("__main__"):
                continue
            module = importlib.import_module(name)
            if any(test.examples for test in finder.find(module)):
                found.add(name)
    return sorted(found)


MODULES = _modules_with_examples()


def test_the_known_modules_with_examples_are_found():
    for name in ("hpcflow.daemon.states", "hpcflow.daemon.lifecycle",
                 "hpcflow.connectors.schedulers.slurm", "hpcflow.connectors.executors.base"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
