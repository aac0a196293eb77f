"""``--as-dflow``: code that imports ``dflow`` runs against hpcflow, unchanged.

An import hook (a ``sys.meta_path`` finder) answers ``import dflow`` and ``dflow.*`` with
hpcflow's modules: ``dflow`` is a module that hands out hpcflow's names (``from dflow import
Workflow``), ``dflow.python``, ``dflow.plugins.dispatcher``, ``dflow.config``, ``dflow.utils``,
... are hpcflow's modules of the same job (``MODULES``). It is installed only when asked for:

- ``hpcflow run --as-dflow SCRIPT`` / ``hpcflow submit --as-dflow SCRIPT``;
- ``HPCFLOW_AS_DFLOW=1 PROGRAM ...`` for programs that are not scripts (a dflow
  application's console script), once ``hpcflow dflow-hook install`` has put a one-line
  ``.pth`` file into the environment's site-packages (it does nothing unless the variable
  is set);
- in a step's runner, when the workflow was submitted with the hook on: the OP's pickle
  installs it before it loads the OP's module (``wrap_pickle``), so an installed dflow
  application's OP classes import there too.

It says so once on stderr, and refuses with one line when the real ``dflow`` (pydflow) was
imported before it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any

from hpcflow.errors import HpcflowError

#: dflow's modules and hpcflow's module that does the same job.
MODULES = {
    "dflow.python": "hpcflow.python",
    "dflow.python.op": "hpcflow.python.op",
    "dflow.python.opio": "hpcflow.python.opio",
    "dflow.python.python_op_template": "hpcflow.python.python_op_template",
    "dflow.plugins": "hpcflow.plugins",
    "dflow.plugins.dispatcher": "hpcflow.plugins.dispatcher",
    "dflow.plugins.bohrium": "hpcflow.plugins.bohrium",
    "dflow.config": "hpcflow.config",
    "dflow.utils": "hpcflow.utils",
    "dflow.step": "hpcflow.step",
    "dflow.task": "hpcflow.step",
    "dflow.steps": "hpcflow.steps",
    "dflow.dag": "hpcflow.steps",
    "dflow.workflow": "hpcflow.workflow",
    "dflow.io": "hpcflow.io",
    "dflow.op_template": "hpcflow.templates",
    "dflow.common": "hpcflow.artifacts",
    "dflow.argo_objects": "hpcflow.argo_objects",
    "dflow.context_syntax": "hpcflow.context_syntax",
    "dflow.executor": "hpcflow.executor",
    "dflow.resource": "hpcflow.executor",
    "dflow.slurm": "hpcflow.slurm",
}

ENV = "HPCFLOW_AS_DFLOW"
PTH_NAME = "hpcflow-as-dflow.pth"
PTH_LINE = ("import os; os.environ.get('HPCFLOW_AS_DFLOW', '') not in ('', '0') and "
            "__import__('hpcflow.as_dflow', fromlist=['x']).install_from_env()\n")


class RealDflowImported(HpcflowError):
    """The real pydflow was imported before the hook: the two cannot be mixed."""


class _DflowModule(types.ModuleType):
    """``dflow`` itself: hpcflow's top-level names, looked up when asked for."""

    def __getattr__(self, name: str) -> Any:
        import hpcflow

        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(hpcflow, name)

    def __dir__(self) -> list[str]:
        import hpcflow

        return sorted(set(super().__dir__()) | set(dir(hpcflow)))


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str | None) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if self.target is not None:
            return importlib.import_module(self.target)
        _announce()
        module = _DflowModule("dflow", "dflow's API, served by hpcflow (--as-dflow)")
        module.__path__ = []  # a package: dflow.python etc. are found by the hook
        import hpcflow

        vars(module)["__version__"] = hpcflow.__version__
        # dflow.config is a module whose name dflow's package rebinds to the dict: bind both
        # first, so that ``import dflow.config`` never replaces ``dflow.config`` the dict
        sys.modules["dflow.config"] = importlib.import_module("hpcflow.config")
        vars(module)["config"] = hpcflow.config
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


#: dflow's modules that reach a service hpcflow does not, and what that service is.
UNSERVED = {
    "dflow.plugins.launching": "OPs as apps of Bohrium's Launching platform (dp.launching)",
    "dflow.plugins.metadata": "a client of Bohrium's metadata and lineage service",
    "dflow.plugins.datasets": "datasets of Bohrium's dataset service",
    "dflow.plugins.lebesgue": "the Lebesgue platform, Bohrium's former name",
    "dflow.plugins.ray": "OPs run on a Ray cluster",
    "dflow.plugins.oss": "Aliyun OSS as artifact storage: use its S3-compatible endpoint "
                         "with hpcflow's S3 storage (s3_config) instead",
}


class DflowFinder(importlib.abc.MetaPathFinder):
    """Answers ``dflow`` and ``dflow.*`` imports with hpcflow's modules."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "dflow":
            return importlib.machinery.ModuleSpec("dflow", _AliasLoader(None),
                                                  is_package=True)
        if not fullname.startswith("dflow."):
            return None
        mapped = MODULES.get(fullname)
        if mapped is None:
            what = f" ({UNSERVED[fullname]})" if fullname in UNSERVED else ""
            raise ModuleNotFoundError(
                f"hpcflow --as-dflow: dflow's module {fullname!r}{what} has no counterpart in "
                f"hpcflow (it serves {', '.join(sorted(MODULES))})", name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(mapped),
                                              is_package=mapped in ("hpcflow.python",
                                                                    "hpcflow.plugins"))


_state: dict[str, Any] = {"quiet": False, "announced": False}


def _announce() -> None:
    if _state["announced"] or _state["quiet"]:
        return
    _state["announced"] = True
    print("hpcflow: --as-dflow: 'import dflow' is served by hpcflow (its workflows run on "
          "hpcflow's engine, not on Argo)", file=sys.stderr)


def active() -> bool:
    return any(isinstance(f, DflowFinder) for f in sys.meta_path)


def _check_not_real() -> None:
    module = sys.modules.get("dflow")
    if module is not None and not isinstance(module, _DflowModule):
        where = getattr(module, "__file__", None) or "an unknown place"
        raise RealDflowImported(
            f"the real dflow (pydflow, {where}) was imported before hpcflow's --as-dflow "
            "hook: run the program with HPCFLOW_AS_DFLOW=1 or --as-dflow from its start, "
            "and import nothing that imports dflow first")


def install(quiet: bool = False) -> None:
    """Serve ``dflow`` imports from hpcflow from now on (idempotent)."""
    _check_not_real()
    _state["quiet"] = _state["quiet"] or quiet
    os.environ[ENV] = "1"  # programs this one starts (hpcflow run's engine, subprocesses)
    if not active():
        sys.meta_path.insert(0, DflowFinder())


def install_from_env() -> None:
    """Called by the ``.pth`` line at interpreter start when ``HPCFLOW_AS_DFLOW`` is set."""
    try:
        install()
    except RealDflowImported as exc:  # pragma: no cover - dflow imported by another .pth
        print(f"hpcflow: {exc}", file=sys.stderr)


def load_aliased(data: bytes) -> Any:
    """Unpickle an OP pickled while the hook was on, with the hook on (quietly: this runs
    in a step's runner)."""
    import pickle

    install(quiet=True)
    return pickle.loads(data)


class _AliasedPickle:
    """Pickles as "install the hook, then load these bytes"."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (load_aliased, (self.data,))


def wrap_pickle(payload: Any) -> Any:
    """What to pickle for an OP: ``payload`` itself, or, while the hook is on, a wrapper
    that turns the hook on where the OP is loaded (a dflow application's module imports
    ``dflow`` when the runner loads its OP class)."""
    if not active():
        return payload
    from hpcflow.spec import dumps_keeping_files

    return _AliasedPickle(dumps_keeping_files(payload))


# -- the .pth file for HPCFLOW_AS_DFLOW=1 -------------------------------------------------
def pth_path() -> Path:
    """Where ``hpcflow dflow-hook install`` writes the ``.pth`` line: this interpreter's
    site-packages."""
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def install_pth() -> Path:
    path = pth_path()
    path.write_text(PTH_LINE)
    return path


def remove_pth() -> bool:
    path = pth_path()
    if path.exists():
        path.unlink()
        return True
    return False
