"""Which of the submitter's modules travel inside the pickles it makes, rather than by name.

A step imports what its pickled OP refers to by name, in a process of its own: started in
its step directory, on a cluster node, or forked from a fork server that was not started
in the user's folder (and must not search it: ``hpcflow.privacy.module_command``). A module
the workflow script imported from its own folder (``helpers.py`` beside ``wf.py``, a
package of the project's) is not importable there, so it is pickled by value, with the
OP's own module: the step needs no copy of the user's files and no ``sys.path`` of theirs.

Only pure-Python modules are sent that way; anything installed (standard library,
site-packages, hpcflow) and anything compiled is imported by name, as before. dflow's own
way, ``python_packages=[...]`` on a template, still works for what lives elsewhere.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
import types

import cloudpickle

#: The folders each top-level module was found in, by name and file (a module re-imported
#: from elsewhere under the same name is looked at again).
_FOLDERS: dict[tuple[str, str | None], tuple[str, ...]] = {}
#: Top-level modules already registered with cloudpickle for pickling by value.
_REGISTERED: set[str] = set()
#: What the last look at ``sys.modules`` saw (a value pickled per item of a long list
#: costs one comparison, not a walk of every module).
_LAST_LOOK: tuple[int, str, str | None] | None = None


@functools.cache
def _install_roots() -> tuple[str, ...]:
    """Where installed modules live (fixed for the process: computed once)."""
    paths = sysconfig.get_paths()
    return tuple({os.path.realpath(paths[k]) + os.sep
                  for k in ("stdlib", "platstdlib", "purelib", "platlib")})


def is_installed_module(module_name: str) -> bool:
    """True for modules a step process can import by name (stdlib, site-packages, hpcflow)."""
    if module_name == "__main__":
        return False
    if module_name.split(".")[0] in ("hpcflow", "builtins"):
        return True
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return True
    return os.path.realpath(path).startswith(_install_roots())


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # removed while we stand in it: nothing is imported from there
        return ""


def script_folders() -> set[str]:
    """The folders this process imports from that a step's process does not search: the
    workflow script's own (``sys.path[0]``; the working directory for ``python -c``, ``-m``
    or an interactive session) and the working directory."""
    cwd = _cwd()
    folders = {cwd}
    if sys.path and not getattr(sys.flags, "safe_path", False):
        folders.add(sys.path[0] or cwd)
    return {os.path.realpath(folder) for folder in folders if folder}


def _folders_of(name: str, module: types.ModuleType) -> tuple[str, ...]:
    """The folders the top-level module ``name`` was imported from (its file's folder, or
    the folder holding its package)."""
    file = getattr(module, "__file__", None)
    found = _FOLDERS.get((name, file))
    if found is None:
        if file:
            folder = os.path.dirname(os.path.abspath(file))
            if hasattr(module, "__path__"):  # a package: its __init__.py is one level down
                folder = os.path.dirname(folder)
            found = (os.path.realpath(folder),)
        else:  # a namespace package: each of its portions
            found = tuple(os.path.realpath(os.path.dirname(os.path.abspath(p)))
                          for p in getattr(module, "__path__", None) or ())
        _FOLDERS[name, file] = found
    return found


def _pure_python(name: str) -> bool:
    """Whether every loaded module of the top-level ``name`` is Python source (cloudpickle
    cannot send a compiled module by value)."""
    prefix = name + "."
    for other, module in list(sys.modules.items()):
        if other == name or other.startswith(prefix):
            file = getattr(module, "__file__", None)
            if file and not file.endswith(".py"):
                return False
    return True


def register_script_modules() -> list[str]:
    """Have cloudpickle send by value every module this process imported from the
    workflow script's folders (see the module's docstring); the names newly registered."""
    global _LAST_LOOK
    look = (len(sys.modules), _cwd(), sys.path[0] if sys.path else None)
    if look == _LAST_LOOK:
        return []
    _LAST_LOOK = look
    folders = script_folders()
    added = []
    for name, module in list(sys.modules.items()):
        if ("." in name or name in _REGISTERED or not isinstance(module, types.ModuleType)
                or name in ("__main__", "__mp_main__")):
            continue
        if not folders.intersection(_folders_of(name, module)):
            continue
        if is_installed_module(name) or not _pure_python(name):
            continue
        cloudpickle.register_pickle_by_value(module)
        _REGISTERED.add(name)
        added.append(name)
    return added
