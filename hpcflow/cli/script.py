"""Running a user's workflow script for ``hpcflow run`` and ``hpcflow submit``."""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from hpcflow.errors import HpcflowError


class ScriptError(HpcflowError):
    """The user's script could not be read or raised; one line says where and why."""


def _user_frame(exc: BaseException, script: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if os.path.abspath(f.filename) == str(script)]
    if mine:
        return f" (line {mine[-1].lineno})"
    return ""


def run_script(path: str, args: Sequence[str] = ()) -> None:
    """Run ``path`` as ``__main__`` with its folder on ``sys.path`` and ``args`` as
    ``sys.argv[1:]``, as ``python FILE ARGS...`` would."""
    script = Path(path).absolute()
    if not script.is_file():
        what = "it is a directory" if script.is_dir() else "no such file"
        raise ScriptError(f"cannot read workflow script {path}: {what}")
    try:
        source = script.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read workflow script {path}: {exc}") from exc
    try:
        compile(source, str(script), "exec")
    except SyntaxError as exc:
        raise ScriptError(f"{path} line {exc.lineno}: SyntaxError: {exc.msg}") from exc
    old_path = list(sys.path)
    old_argv = list(sys.argv)
    sys.path.insert(0, str(script.parent))
    sys.argv = [str(script), *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except HpcflowError as exc:
        raise ScriptError(f"{path}{_user_frame(exc, script)}: {exc}") from exc
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ScriptError(f"{path} exited with status {exc.code}") from exc
    except Exception as exc:
        shown = bool(os.environ.get("HPCFLOW_TRACEBACK"))
        if shown:
            traceback.print_exc()
        hint = "" if shown else " (set HPCFLOW_TRACEBACK=1 for the traceback)"
        raise ScriptError(
            f"{path}{_user_frame(exc, script)}: {type(exc).__name__}: {exc}{hint}"
        ) from exc
    finally:
        sys.path[:] = old_path
        sys.argv = old_argv
