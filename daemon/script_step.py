"""Running a shell or Python script template inside the runner (dflow's debug-mode rules).

- ``{{inputs.parameters.NAME}}`` is replaced by the value's text; in shell scripts it is
  shell-quoted, so a value can never become shell syntax.
- A declared absolute path (``InputArtifact(path="/tmp/foo.txt")``, ``value_from_path``,
  ``OutputArtifact(path=...)``) lives under the step's ``workdir/`` on the host, and its
  occurrences in the script are rewritten to match; ``/tmp`` is mapped the same way.
- The script runs as ``command + [script file]`` in ``workdir/``; a non-zero exit fails the
  step. ``image=`` is recorded, not used: the step runs on the host.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from hpcflow import values
from hpcflow.templates import SCRIPT_PARAMETER


class ScriptFailure(Exception):
    pass


def host_path(path: str, workdir: Path) -> Path:
    """Where a template's path lives for a step on the host."""
    return workdir / path.lstrip("/") if path.startswith("/") else workdir / path


def declared_paths(template: dict) -> list[str]:
    paths = [a.get("path") for a in template["inputs"]["artifacts"].values()]
    paths += [p.get("value_from_path") for p in template["outputs"]["parameters"].values()]
    paths += [a.get("path") for a in template["outputs"]["artifacts"].values()]
    return sorted({p for p in paths if p and p.startswith("/")}, key=len, reverse=True)


def render(template: dict, params: dict[str, Any], workdir: Path) -> str:
    quote = template["kind"] == "shell"

    def text_of(match: re.Match) -> str:
        name = match.group(1)
        if name not in params:
            raise ScriptFailure(f"the script uses {match.group(0)}, which is not an input")
        text = values.render_text(values.from_jsonable(params[name]))
        return shlex.quote(text) if quote else text

    # The template's paths are rewritten before the values go in (dflow's order), so a
    # value that holds "/tmp" reaches the script as given. One pass over the script, so
    # that a rewritten path is never rewritten again.
    alternatives = [re.escape(p) + r"(?![\w.-])" for p in declared_paths(template)]
    alternatives.append(r"/tmp(?=/|(?![\w.-]))")
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(alternatives) + ")")
    script = pattern.sub(lambda m: str(host_path(m.group(1), workdir)), template["script"])
    return SCRIPT_PARAMETER.sub(text_of, script)


def place_inputs(template: dict, staged: dict[str, Any], workdir: Path) -> None:
    """Link each staged input artifact to the path its template declares."""
    for name, decl in template["inputs"]["artifacts"].items():
        value = staged.get(name)
        if value is None or not decl.get("path"):
            continue
        target = host_path(decl["path"], workdir)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = value if isinstance(value, Path) else None
        if source is None:
            raise ScriptFailure(f"input artifact {name!r} has several paths; declare it a "
                                "directory path")
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(source.resolve())


def _coerce(text: str, declared: str | None) -> Any:
    if declared in (None, "str", "Any"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run(template: dict, params: dict[str, Any], staged: dict[str, Any], step_dir: Path,
        workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the script; the outputs it produced (parameters as values, artifacts as paths)."""
    (workdir / "tmp").mkdir(exist_ok=True)
    place_inputs(template, staged, workdir)
    script_file = step_dir / "script"
    script_file.write_text(render(template, params, workdir))
    if template.get("image") and os.environ.get("HPCFLOW_CONTAINER_IMAGE"):
        print(f"hpcflow: running in image {template['image']!r}", flush=True)
    elif template.get("image"):
        print(f"hpcflow: image {template['image']!r} is recorded; this machine runs steps on "
              "the host (set container = \"apptainer\" for the machine to use it)", flush=True)
    # relative to its cwd: `ps` shows other accounts no workflow id
    code = subprocess.call([*template["command"], os.path.relpath(script_file, workdir)],
                           cwd=workdir, env={**os.environ, **env})
    if code != 0:
        raise ScriptFailure(f"the script exited with status {code}")
    outputs: dict[str, Any] = {}
    for name, decl in template["outputs"]["parameters"].items():
        source = decl.get("value_from_path")
        if not source:
            continue
        path = host_path(source, workdir)
        if path.is_file():
            outputs[name] = _coerce(path.read_text().rstrip("\n"), decl.get("type"))
        elif "default" not in decl:
            raise ScriptFailure(f"output parameter {name!r}: the script wrote no {source}")
    for name, decl in template["outputs"]["artifacts"].items():
        if decl.get("path"):
            path = host_path(decl["path"], workdir)
            if path.exists():
                outputs[name] = path
            else:
                raise ScriptFailure(f"output artifact {name!r}: the script wrote no "
                                    f"{decl['path']}")
    return outputs
