"""A workflow graph as a standalone SVG, as Graphviz DOT, as Mermaid, and as PNG (DOT
through Graphviz's ``dot``, fed on stdin).

The SVG is what the web page inlines and updates live, so its shape is a contract: every
step is ``<g class="node phase-P" data-step-id="ID">``, every group box
``<g class="group phase-P" data-group-id="ID">``, a folded "N more" node
``<g class="more" data-more-of="ID">``, a task or step not created yet ``<g class="planned">``
(no id: it has no step); the page swaps ``phase-*`` classes (the colours
follow through the stylesheet) and may replace the text of a step's ``.phase-label`` and a
group's ``.group-label`` (its title and counts). Every edge is a ``polyline`` with
``data-from`` and ``data-to`` (node ids: ``s<step id>``, ``more-s<group's step id>``).
Everything from the workflow (names, reasons) is XML-escaped; the SVG holds no script and
no reference outside itself.
"""

from __future__ import annotations

import shutil
import string
import subprocess
from collections.abc import Iterator

from hpcflow.cli.render import counts_text
from hpcflow.errors import HpcflowError
from hpcflow.ui.graph_model import Graph, GraphNode
from hpcflow.ui.layout import LINE_H, Box, Layout, group_header, layout, node_lines

#: Phase -> (fill, stroke): Okabe and Ito's colour-blind-safe hues as strokes, light tints of
#: them as fills (dark text reads on every one); a dash pattern tells phases apart without
#: colour, and the phase is written in each box and its title.
PALETTE = {
    "Pending": ("#fbf6cf", "#a08a00"),
    "Running": ("#d9ecf8", "#0072b2"),
    "Succeeded": ("#d3efe6", "#009e73"),
    "Failed": ("#f9e0cf", "#d55e00"),
    "Error": ("#f5e1ec", "#cc79a7"),
    "Skipped": ("#ececec", "#7a7a7a"),
    "Omitted": ("#ececec", "#7a7a7a"),
    "Terminated": ("#fbecc8", "#e69f00"),
}
UNKNOWN = ("#ffffff", "#555555")
DASHES = {"Pending": "6 3", "Skipped": "2 3", "Omitted": "2 3", "Terminated": "8 3 2 3"}
#: Failures stand out by a thicker line too.
WIDE = frozenset({"Failed", "Error"})


def xml(text: object) -> str:
    """Text safe in XML content and in a double-quoted attribute.

    >>> xml('<script>"a" & \\'b\\'</script>')
    '&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;'
    """
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace('"', "&quot;").replace("'", "&#39;")
    # characters XML 1.0 forbids (controls but tab and newline) would make the file invalid
    return "".join(c if c >= " " or c in "\t\n" else "\ufffd" for c in out)


def _style() -> str:
    rules = [
        ".hpcflow-graph{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,"
        "sans-serif;font-size:12px}",
        ".hpcflow-graph text{fill:#1a1a1a}",
        ".hpcflow-graph .group>rect{fill-opacity:0.35;stroke-width:1.2}",
        ".hpcflow-graph .group>text{font-weight:600}",
        ".hpcflow-graph .node>rect,.hpcflow-graph .more>rect{stroke-width:1.6}",
        ".hpcflow-graph .more>rect{fill:#f4f4f4;stroke:#555555;stroke-dasharray:4 3}",
        ".hpcflow-graph .planned>rect{fill:#ffffff;stroke:#8c8c8c;stroke-width:1.2;"
        "stroke-dasharray:2 3}",
        ".hpcflow-graph .planned>text{fill:#595959}",
        ".hpcflow-graph .phase-label{font-size:11px;fill:#333333}",
        ".hpcflow-graph .edge{fill:none;stroke:#666666;stroke-width:1.2}",
        ".hpcflow-graph .arrow{fill:#666666}",
        ".hpcflow-graph [data-step-id]{cursor:pointer}",
    ]
    for phase, (fill, stroke) in PALETTE.items():
        rule = f"fill:{fill};stroke:{stroke}"
        if phase in DASHES:
            rule += f";stroke-dasharray:{DASHES[phase]}"
        if phase in WIDE:
            rule += ";stroke-width:3"
        rules.append(f".hpcflow-graph .phase-{phase}>rect{{{rule}}}")
    return "\n".join(rules)


def _phase_class(phase: str) -> str:
    """``phase-P`` for a known phase; anything else (never from a user, but still) is
    reduced to letters."""
    return "phase-" + ("".join(c for c in phase if c.isalnum()) or "Unknown")


def _title(node: GraphNode) -> str:
    if node.kind == "group":
        text = f"{node.name} ({node.group}, {node.phase}): {counts_text(node.counts)}"
    elif node.kind == "more":
        text = f"{node.name} folded away: {counts_text(node.counts)}"
    elif node.kind == "planned":
        text = f"{node.name}: {node.note}"
    else:
        text = f"{node.name}: {node.phase}"
    if node.reason:
        text += f"\n{node.reason}"
    return f"<title>{xml(text)}</title>"


def _rect(box: Box, rx: int = 6) -> str:
    return (f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="{rx}"/>')


def _svg_group(node: GraphNode, box: Box) -> str:
    shut = " collapsed" if node.collapsed else ""
    return (f'<g class="group{shut} {_phase_class(node.phase)}" data-group-id="{node.step_id}">'
            f"{_title(node)}{_rect(box, 8)}"
            f'<text class="group-label" x="{box.x + 10:.1f}" y="{box.y + 17:.1f}">'
            f"{xml(group_header(node, box.w))}</text>"
            "</g>")


def _svg_box(node: GraphNode, box: Box) -> str:
    first, second = node_lines(node)
    mid = box.y + box.h / 2
    text = (f'<text x="{box.cx:.1f}" y="{mid - 3:.1f}" text-anchor="middle">{xml(first)}</text>'
            f'<text class="{"phase-label" if node.kind == "step" else "counts"}" '
            f'x="{box.cx:.1f}" y="{mid - 3 + LINE_H:.1f}" text-anchor="middle">'
            f"{xml(second)}</text>")
    if node.kind == "more":
        counts = ",".join(f"{p}:{n}" for p, n in node.counts.items())
        return (f'<g class="more" data-more-of="{node.step_id}" data-counts="{xml(counts)}">'
                f"{_title(node)}{_rect(box)}{text}</g>")
    if node.kind == "planned":
        return f'<g class="planned">{_title(node)}{_rect(box)}{text}</g>'
    return (f'<g class="node {_phase_class(node.phase)}" data-step-id="{node.step_id}">'
            f"{_title(node)}{_rect(box)}{text}</g>")


def _svg_edges(drawn: Layout) -> Iterator[str]:
    for route in drawn.routes:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in route.points)
        yield (f'<polyline class="edge" data-from="{xml(route.src)}" data-to="{xml(route.dst)}" '
               f'points="{points}"/>')
        x, y = route.points[-1]
        px, py = route.points[-2]
        if abs(y - py) >= abs(x - px):  # an arrowhead pointing down (or up, turned round)
            s = 1 if y >= py else -1
            yield (f'<path class="arrow" d="M{x:.1f},{y:.1f} l-4,{-7 * s} l8,0 z"/>')
        else:
            s = 1 if x >= px else -1
            yield (f'<path class="arrow" d="M{x:.1f},{y:.1f} l{-7 * s},-4 l0,8 z"/>')


def render_svg(graph: Graph, drawn: Layout | None = None) -> str:
    """A standalone SVG of ``graph`` (laid out now unless ``drawn`` is given)."""
    drawn = drawn or layout(graph)
    w, h = max(drawn.width, 1.0), max(drawn.height, 1.0)
    label = f"workflow {graph.workflow} ({graph.name}): {graph.phase}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="hpcflow-graph" '
             f'width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
             f'aria-label="{xml(label)}" data-workflow="{xml(graph.workflow)}">',
             f"<title>{xml(label)}</title>", f"<style>{_style()}</style>"]
    for nid, node in graph.nodes.items():  # groups first (outer before inner): behind
        if node.kind == "group":
            parts.append(_svg_group(node, drawn.boxes[nid]))
    parts += _svg_edges(drawn)
    for nid, node in graph.nodes.items():
        if node.kind != "group":
            parts.append(_svg_box(node, drawn.boxes[nid]))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def dot_quote(text: object) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped (a backslash would start
    one of Graphviz's label escapes), line breaks as ``\\n``.

    >>> print(dot_quote('say "hi" \\\\ <b>'))
    "say \\"hi\\" \\\\ <b>"
    """
    out = str(text).replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    out = "".join(c if c >= " " else " " if c == "\t" else "\ufffd" for c in out)
    return f'"{out}"'


def _dot_ends(graph: Graph, nid: str, last: bool) -> str:
    """The node an edge to (or from, ``last``) a group attaches to: its first (last) member,
    searched down; the group's placeholder when it has none."""
    node = graph.nodes[nid]
    while node.kind == "group" and node.children:
        node = graph.nodes[node.children[-1 if last else 0]]
    return node.id if node.kind != "group" else f"{node.id}-empty"


def render_dot(graph: Graph) -> str:
    """``graph`` in Graphviz's DOT language: groups as clusters, steps as boxes."""
    out = [f"digraph {dot_quote(graph.workflow or 'workflow')} {{",
           '  graph [compound=true, rankdir=TB, fontname="Helvetica", fontsize=11];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
           '  edge [color="#666666"];']

    def emit(nid: str, indent: str) -> None:
        node = graph.nodes[nid]
        fill, stroke = PALETTE.get(node.phase, UNKNOWN)
        if node.kind == "group":
            out.append(f"{indent}subgraph {dot_quote('cluster_' + nid)} {{")
            out.append(f"{indent}  label={dot_quote(group_header(node))}; "
                       f'style="rounded,filled"; fillcolor="{fill}"; color="{stroke}";')
            for child in node.children:
                emit(child, indent + "  ")
            if not node.children:
                empty = "collapsed" if node.collapsed else "no steps yet"
                out.append(f"{indent}  {dot_quote(nid + '-empty')} [label=\"{empty}\", "
                           "shape=plaintext, style=\"\"];")
            out.append(f"{indent}}}")
        elif node.kind == "more":
            label = f"… {node.name}\n{counts_text(node.counts)}"
            out.append(f'{indent}{dot_quote(nid)} [label={dot_quote(label)}, '
                       'style="rounded,dashed,filled", fillcolor="#f4f4f4", class="more"];')
        elif node.kind == "planned":
            label = f"{node.name}\n{node.note}"
            out.append(f'{indent}{dot_quote(nid)} [label={dot_quote(label)}, '
                       'style="rounded,dotted", color="#8c8c8c", fontcolor="#595959", '
                       'class="planned"];')
        else:
            label = f"{node.name}\n{node.phase}"
            out.append(f'{indent}{dot_quote(nid)} [label={dot_quote(label)}, '
                       f'fillcolor="{fill}", color="{stroke}", '
                       f'class={dot_quote("node phase-" + node.phase)}];')

    for root in graph.roots:
        emit(root, "  ")
    for src, dst in graph.edges:
        attrs = []
        if graph.nodes[src].kind == "group":
            attrs.append(f"ltail={dot_quote('cluster_' + src)}")
        if graph.nodes[dst].kind == "group":
            attrs.append(f"lhead={dot_quote('cluster_' + dst)}")
        tail = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {dot_quote(_dot_ends(graph, src, True))} -> "
                   f"{dot_quote(_dot_ends(graph, dst, False))}{tail};")
    out.append("}")
    return "\n".join(out) + "\n"


#: Characters left as they are in a Mermaid label; every other ASCII character becomes an
#: entity code (``#35;``), so that quotes, brackets, ``<>`` and ``#`` cannot end the label
#: or become markup. Letters beyond ASCII stay (Mermaid reads UTF-8).
_MERMAID_PLAIN = frozenset(string.ascii_letters + string.digits + " _.,:-+/=()")


def mermaid_text(text: object) -> str:
    """``text`` for a double-quoted Mermaid label.

    >>> mermaid_text('a "b" <c> #1 é')
    'a #34;b#34; #60;c#62; #35;1 é'
    """
    return "".join(c if c in _MERMAID_PLAIN or (ord(c) > 127 and c.isprintable())
                   else f"#{ord(c)};" for c in str(text).replace("\n", " "))


def _mermaid_id(nid: str) -> str:
    return nid.replace("-", "_")


def render_mermaid(graph: Graph) -> str:
    """``graph`` as a Mermaid flowchart (GitHub and many notebooks draw it)."""
    out = ["flowchart TD"]
    for phase, (fill, stroke) in PALETTE.items():
        out.append(f"  classDef phase{phase} fill:{fill},stroke:{stroke},color:#1a1a1a")
    out.append("  classDef more fill:#f4f4f4,stroke:#555555,stroke-dasharray:4 3")
    out.append("  classDef planned fill:#ffffff,stroke:#8c8c8c,color:#595959,"
               "stroke-dasharray:2 3")

    def emit(nid: str, indent: str) -> None:
        node = graph.nodes[nid]
        mid = _mermaid_id(nid)
        if node.kind == "group":
            out.append(f'{indent}subgraph {mid}["{mermaid_text(group_header(node))}"]')
            for child in node.children:
                emit(child, indent + "  ")
            out.append(f"{indent}end")
            # a subgraph takes ``style`` (``class`` reaches only nodes in some versions)
            fill, stroke = PALETTE.get(node.phase, UNKNOWN)
            out.append(f"{indent}style {mid} fill:{fill},stroke:{stroke}")
        elif node.kind == "more":
            label = f"… {node.name}: {counts_text(node.counts)}"
            out.append(f'{indent}{mid}["{mermaid_text(label)}"]:::more')
        elif node.kind == "planned":
            label = f"{node.name} · {node.note}"
            out.append(f'{indent}{mid}["{mermaid_text(label)}"]:::planned')
        else:
            label = f"{node.name} · {node.phase}"
            out.append(f'{indent}{mid}["{mermaid_text(label)}"]:::'
                       f"phase{_phase_class(node.phase)[6:]}")

    for root in graph.roots:
        emit(root, "  ")
    for src, dst in graph.edges:
        out.append(f"  {_mermaid_id(src)} --> {_mermaid_id(dst)}")
    return "\n".join(out) + "\n"


class GraphvizMissing(HpcflowError):
    """PNG needs Graphviz's ``dot``."""


def render_png(graph: Graph) -> bytes:
    """``graph`` as PNG, drawn by Graphviz's ``dot`` from the DOT text on its stdin (no
    workflow text ever reaches a command line)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("PNG needs Graphviz's 'dot', which is not on PATH: install "
                              "graphviz (apt-get install graphviz, dnf install graphviz, "
                              "conda install graphviz) or use -o svg")
    done = subprocess.run([dot, "-Tpng"], input=render_dot(graph).encode(),
                          capture_output=True, timeout=300, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise HpcflowError(f"Graphviz's dot failed to draw the PNG ({why}): try -o svg")
    return done.stdout
