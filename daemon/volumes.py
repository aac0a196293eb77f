"""dflow's shared volumes (``step.outputs.artifacts["x"].pvc()``), on a shared filesystem.

In dflow a step's output saved with ``.pvc()`` is copied, when the step's script ends, into a
Kubernetes volume that another step mounts; that step is given the artifact as a symbolic
link into the volume and does not wait for the first: it runs beside it and waits for the
file itself (dflow's "async" example). Here the volume is a directory of the workflow's,
next to its step directories on the machine that runs them (``WORKFLOW/volumes/NAME/``).
The copy is made under a temporary name and renamed into place, so a step that waits for
the path never reads half of it (dflow's ``cp -r`` gives no such promise).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

#: A volume's name and a subpath in it: one plain path component each.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def check_component(text: str, what: str) -> str:
    """``text`` if it is one plain path component; else ``ValueError`` naming it."""
    if not _COMPONENT.fullmatch(text) or ".." in text:
        raise ValueError(f"{what} {text!r} is not a plain file name (letters, digits, '.', "
                         "'_' and '-', starting with a letter or digit)")
    return text


def volume_path(step_dir: Path, ref: dict[str, Any]) -> Path:
    """Where a volume's subpath lives for the step in ``step_dir`` (its folder is made)."""
    name = check_component(str(ref.get("name")), "volume name")
    subpath = check_component(str(ref.get("subpath")), "volume subpath")
    folder = step_dir.parent / "volumes" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / subpath


def save_to_volumes(saves: dict[str, list[dict[str, Any]]], produced: dict[str, Any],
                    step_dir: Path) -> None:
    """Copy each output artifact that ``saves`` names (output name -> volumes) from the path
    the script wrote it at (``produced``) into its volumes, atomically."""
    for name, refs in saves.items():
        source = produced.get(name)
        if not isinstance(source, Path):
            continue  # the script-step runner reports a missing output itself
        for ref in refs:
            target = volume_path(step_dir, ref)
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            _remove(tmp)
            if source.is_dir():
                shutil.copytree(source, tmp, symlinks=True)
            else:
                shutil.copy2(source, tmp)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # a retry's copy replaces the last attempt's
            os.replace(tmp, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
