"""``hpcflow get WF``: the workflow as a tree (the view ``argo get`` and ``verdi process
status`` give), each step with its phase, duration, attempt, machine, scheduler job id and
why it failed or waits."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from hpcflow.cli import render
from hpcflow.cli.selection import workflow_argument
from hpcflow.cli.served import say_if_unserved
from hpcflow.cli.tree import Node, build, lines
from hpcflow.cli.tree_json import Shape, write_tree

#: Phase -> (symbol, colour) on a terminal.
PHASE_LOOK = {
    "Pending": ("◷", "yellow"), "Running": ("●", "blue"), "Succeeded": ("✔", "green"),
    "Failed": ("✖", "red"), "Error": ("⚠", "red"), "Skipped": ("○", None),
    "Omitted": ("○", None), "Terminated": ("■", "magenta"),
}
GROUP_LABEL = {"Steps": "Steps", "DAG": "DAG", "StepGroup": "group"}


def decorated(stream: Any = None) -> bool:
    """Symbols and colours: on a terminal, unless ``NO_COLOR`` is set (no-color.org)."""
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def label(node: Node) -> str:
    """The step's name; a group's with its kind and its leaf steps counted by phase."""
    row = node.row
    if row["type"] == "Pod":
        return str(row["name"])
    total = sum(node.leaves.values())
    counts = render.counts_text(dict(node.leaves)) if total else "no steps yet"
    kind = GROUP_LABEL.get(row["type"], row["type"])
    return f"{row['name']} [{kind}: {counts}]"


def phase_text(phase: str, fancy: bool) -> str:
    return f"{PHASE_LOOK.get(phase, ('?', None))[0]} {phase}" if fancy else phase


def _progress(row: Mapping[str, Any]) -> str:
    total = row["progress_total"]
    return "" if total is None else f"{row['progress_current']}/{total}"


WIDE_HEADERS = ["STEP", "PHASE", "DURATION", "ATTEMPT", "MACHINE", "JOB ID", "MESSAGE",
                "ID", "KEY", "PROGRESS", "STARTED", "STEP DIR"]
HEADERS = WIDE_HEADERS[:7]


def table_rows(roots: list[Node], wide: bool, fancy: bool
               ) -> Iterator[tuple[list[str], str]]:
    """(cells, phase) per line of the tree; a folded summary has no phase."""
    for prefix, node, summary in lines(roots):
        if node is None:
            yield [prefix + summary] + [""] * (len(WIDE_HEADERS if wide else HEADERS) - 1), ""
            continue
        row = node.row
        cells = [prefix + label(node), phase_text(row["phase"], fancy),
                 render.step_duration(row), render.attempt(row),
                 render.machine(row), render.job_id(row), row["reason"] or ""]
        if wide:
            cells += [str(row["id"]), row["key"] or "", _progress(row),
                      render.when(row["started_at"]) if row["started_at"] else "",
                      row["step_dir"] or ""]
        yield cells, row["phase"]


def render_table(roots: list[Node], wide: bool, fancy: bool) -> Iterator[str]:
    headers = WIDE_HEADERS if wide else HEADERS
    body = list(table_rows(roots, wide, fancy))
    widths = [len(h) for h in headers]
    for cells, _ in body:
        widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
    yield "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    for cells, phase in body:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        colour = PHASE_LOOK.get(phase, ("", None))[1]
        if fancy and colour:  # styled after padding: the escapes take no column
            padded[1] = click.style(cells[1], fg=colour) + " " * (widths[1] - len(cells[1]))
        yield "  ".join(padded).rstrip()


def node_json(node: Node) -> dict:
    row = node.row
    data: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "type": row["type"], "phase": row["phase"],
        "key": row["key"], "started_at": row["started_at"], "finished_at": row["finished_at"],
        "run_seconds": render.run_seconds(row), "reason": row["reason"],
    }
    if row["type"] == "Pod":
        data.update(attempt=row["attempt"] or 0, machine=render.machine(row) or None,
                    job_id=render.job_id(row) or None, step_dir=row["step_dir"],
                    progress=None if row["progress_total"] is None else
                    {"current": row["progress_current"], "total": row["progress_total"]})
    else:
        data["steps"] = dict(node.leaves)
        data["children"] = [node_json(c) for c in node.children]
        if node.folded:
            data["folded"] = dict(node.folded)
    return data


def json_head(wf: Mapping[str, Any]) -> dict:
    """The workflow's own fields of ``-o json`` (its step counts and tree follow)."""
    return {"id": wf["id"], "name": wf["name"], "phase": wf["phase"],
            "suspended": bool(wf["suspended"]), "message": wf["message"],
            "created_at": wf["created_at"], "started_at": wf["started_at"],
            "finished_at": wf["finished_at"]}


def header(wf: Mapping[str, Any], root: Node | None) -> list[tuple[str, str]]:
    live = wf["phase"] in ("Pending", "Running")  # a finished one is not "suspended"
    phase = wf["phase"] + (" (suspended)" if wf["suspended"] and live else "")
    fields = [("Name", f"{wf['id']} ({wf['name']})"), ("Phase", phase)]
    if wf["message"]:
        fields.append(("Message", wf["message"]))
    fields += [("Created", render.when(wf["created_at"])),
               ("Duration", render.duration(wf["started_at"], wf["finished_at"]))]
    if root is not None:
        fields.append(("Steps", render.counts_text(dict(root.leaves))))
    return fields


@click.command()
@workflow_argument()
@click.option("-o", "--output", "output", type=click.Choice(["text", "wide", "json"]),
              default="text", show_default=True,
              help="wide: also step ids, keys, progress, start times and step directories.")
@click.option("--fold", default=10, show_default=True, type=click.IntRange(min=0),
              help="Show at most this many children of a group, then only the failed and "
                   "running ones and the last; 0 shows every step (-o json: 0 unless given).")
def get(workflow: str, output: str, fold: int) -> None:
    """WORKFLOW as a tree: every step with its phase, duration, attempt, machine, scheduler
    job id and why it failed or waits; loops and slices folded with counts."""
    from hpcflow.daemon import client
    from hpcflow.settings import home as hpcflow_home

    home: Path = hpcflow_home()
    wf = client.workflow_row(home, workflow)
    say_if_unserved(home)
    given = click.get_current_context().get_parameter_source("fold")
    if output == "json" and given != click.core.ParameterSource.COMMANDLINE:
        fold = 0
    store = client.store_for(home)
    if output == "json" and fold == 0:  # every step: written as read, never all in memory
        with store.read_snapshot():
            shape = Shape.read(store.iter_step_shape(wf["id"])
                               if wf["root_step"] is not None else ())
            write_tree(sys.stdout, json_head(wf), shape, store.step_outline_rows, node_json)
        return
    roots = build(store.iter_step_outline(wf["id"]), fold) \
        if wf["root_step"] is not None else []
    root = roots[0] if roots else None
    if output == "json":
        data = {**json_head(wf), "steps": dict(root.leaves) if root else {},
                "tree": [node_json(r) for r in roots]}
        click.echo(json.dumps(data, indent=2))
        return
    for name, value in header(wf, root):
        click.echo(f"{name + ':':<10}{value}")
    if not roots:
        click.echo("\nno steps yet")
        return
    click.echo()
    for line in render_table(roots, output == "wide", decorated()):
        click.echo(line)

