"""``hpcflow graph WF``: the workflow's graph (steps, dependencies, loops and slices folded
with counts, nested Steps as nested boxes, coloured by phase) as SVG, DOT, Mermaid or PNG,
for papers, notebooks and issue reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hpcflow.cli.selection import workflow_argument
from hpcflow.errors import HpcflowError

FORMATS = ("svg", "dot", "mermaid", "png", "json")
#: A file's suffix -> the format it asks for, when ``-o`` is not given.
SUFFIXES = {".svg": "svg", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
            ".mermaid": "mermaid", ".png": "png", ".json": "json"}


@click.command()
@workflow_argument()
@click.option("-o", "--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="svg (standalone), dot (Graphviz), mermaid, png (drawn by Graphviz's dot) "
                   "or json (the graph's nodes and edges). Default: from --output's suffix, "
                   "else svg.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (text formats go to stdout without it).")
@click.option("--fold", default=30, show_default=True, type=click.IntRange(min=0),
              help="Show at most this many children of a group, then only the failed and "
                   "running ones and the last, the rest as one node counted by phase; "
                   "0 shows every step.")
def graph(workflow: str, fmt: str | None, output: Path | None, fold: int) -> None:
    """WORKFLOW's graph: steps, DAG edges, loops and slices as groups with counts, nested
    Steps as nested boxes, coloured by phase."""
    from hpcflow.cli.served import say_if_unserved
    from hpcflow.settings import home as hpcflow_home
    from hpcflow.ui import export
    from hpcflow.ui.graph_model import workflow_graph

    if fmt is None:
        fmt = SUFFIXES.get(output.suffix.lower(), "svg") if output is not None else "svg"
    if fmt == "png" and output is None and sys.stdout.isatty():
        raise HpcflowError("-o png writes binary: give --output FILE.png (or redirect stdout "
                           "to a file)")
    home = hpcflow_home()
    model = workflow_graph(home, workflow, fold)
    say_if_unserved(home)
    if fmt == "png":
        data = export.render_png(model)
        if output is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            output.write_bytes(data)
        return
    if fmt == "json":
        text = json.dumps(model.to_json(), indent=1, ensure_ascii=False) + "\n"
    else:
        text = {"svg": export.render_svg, "dot": export.render_dot,
                "mermaid": export.render_mermaid}[fmt](model)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
