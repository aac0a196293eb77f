"""A layered (Sugiyama-style) layout of a workflow graph, in pure Python.

Each group is laid out on its own, innermost first, and then drawn as one box in its
parent's layout (nested Steps are nested boxes). Inside a group:

1. edges closing a cycle are turned round (a depth-first search in node order), so that
   what is left is acyclic;
2. each node's layer is its longest path from a node without predecessors;
3. an edge spanning several layers gets a point in each layer it crosses, so that it is
   routed between the nodes of those layers and counted when crossings are reduced;
4. the order within each layer is sorted by the barycenter of the neighbours in the layer
   before, then after, a few times over (fewer crossings);
5. each node is moved towards the mean x of its neighbours, left to right, never closer
   than a gap to the node before it (no overlap by construction).

A group without edges (a loop's or slices' items, a Steps' one parallel group) is a grid.
Folding keeps every group's children to a few dozen, so this stays quick at any size.
Sizes are estimated from the text (no fonts are read): the drawing needs no browser.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hpcflow.cli.render import counts_text
from hpcflow.ui.graph_model import Graph, GraphNode

CHAR_W = 7.2  # px per character of 12px sans-serif (an average, rounded up)
LINE_H = 16.0
NODE_H = 2 * LINE_H + 8
NODE_MIN_W = 72.0
TEXT_PAD = 10.0
NAME_CHARS = 28  # a longer name is cut (with "…") in the box; its title keeps it whole
HEADER_CHARS = 64
GAP_X = 24.0
GAP_Y = 40.0
BOX_PAD = 12.0
HEADER_H = 26.0
DUMMY_W = 8.0
GRID_COLS = 6
MARGIN = 10.0
SWEEPS = 4


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)


@dataclass(frozen=True)
class Route:
    """An edge drawn from ``points[0]`` (at ``src``) to ``points[-1]`` (at ``dst``)."""

    src: str
    dst: str
    points: tuple[tuple[float, float], ...]


@dataclass
class Layout:
    boxes: dict[str, Box] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def node_lines(node: GraphNode) -> list[str]:
    """The text in a step's or a "N more" node's box (the name cut to fit)."""
    if node.kind == "more":
        return [f"… {node.name}", cut(counts_text(node.counts), HEADER_CHARS)]
    if node.kind == "planned":
        return [cut(node.name, NAME_CHARS), node.note or ""]
    return [cut(node.name, NAME_CHARS), node.phase]


def group_header(node: GraphNode, width: float = 0.0) -> str:
    """A group's title line: its name, kind and leaf steps by phase, cut to fit a box
    ``width`` wide (at least ``HEADER_CHARS`` characters)."""
    chars = max(HEADER_CHARS, int((width - 2 * TEXT_PAD) / CHAR_W))
    closed = " (collapsed)" if node.collapsed else ""
    return cut(f"{node.name} · {node.group}{closed}: {counts_text(node.counts)}", chars)


def text_width(lines: Sequence[str]) -> float:
    return max((len(line) for line in lines), default=0) * CHAR_W + 2 * TEXT_PAD


def layout(graph: Graph) -> Layout:
    """Boxes for every node (absolute, top-left origin) and a route for every edge."""
    edges_in: dict[str | None, list[tuple[str, str]]] = {}
    for src, dst in graph.edges:
        parent = graph.nodes[src].parent
        if graph.nodes[dst].parent == parent:  # edges join siblings only
            edges_in.setdefault(parent, []).append((src, dst))
    sizes: dict[str, tuple[float, float]] = {}
    relative: dict[str, Box] = {}
    routes: dict[str | None, list[Route]] = {}

    def measure(nid: str) -> None:
        node = graph.nodes[nid]
        if node.kind != "group":
            sizes[nid] = (max(NODE_MIN_W, text_width(node_lines(node))), NODE_H)
            return
        for child in node.children:
            measure(child)
        placed, inner, w, h = place(node.children, edges_in.get(nid, []), sizes)
        for child, box in placed.items():
            relative[child] = box.moved(BOX_PAD, HEADER_H)
        routes[nid] = [_moved(r, BOX_PAD, HEADER_H) for r in inner]
        width = max(w, text_width([group_header(node)]) - 2 * TEXT_PAD)
        sizes[nid] = (width + 2 * BOX_PAD, HEADER_H + max(h, LINE_H) + BOX_PAD)

    for root in graph.roots:
        measure(root)
    placed, top, w, h = place(graph.roots, edges_in.get(None, []), sizes)
    result = Layout(width=w + 2 * MARGIN, height=h + 2 * MARGIN)
    for root, box in placed.items():
        relative[root] = box.moved(MARGIN, MARGIN)
    result.routes += [_moved(r, MARGIN, MARGIN) for r in top]

    def absolute(nid: str, dx: float, dy: float) -> None:
        box = relative[nid].moved(dx, dy)
        result.boxes[nid] = box
        result.routes.extend(_moved(r, box.x, box.y) for r in routes.get(nid, []))
        for child in graph.nodes[nid].children:
            absolute(child, box.x, box.y)

    for root in graph.roots:
        absolute(root, 0.0, 0.0)
    return result


def _moved(route: Route, dx: float, dy: float) -> Route:
    return Route(route.src, route.dst, tuple((x + dx, y + dy) for x, y in route.points))


Placed = tuple[dict[str, Box], list[Route], float, float]


def place(nodes: Sequence[str], edges: Sequence[tuple[str, str]],
          sizes: Mapping[str, tuple[float, float]]) -> Placed:
    """Boxes (relative to the top-left of the area), routes, and the area's width and height
    for ``nodes`` of the given sizes joined by ``edges``."""
    if not nodes:
        return {}, [], 0.0, 0.0
    if not edges:
        return grid(nodes, sizes)
    return layered(nodes, edges, sizes)


def grid(nodes: Sequence[str], sizes: Mapping[str, tuple[float, float]]) -> Placed:
    cols = min(GRID_COLS, len(nodes))
    widths = [0.0] * cols
    heights = [0.0] * ((len(nodes) + cols - 1) // cols)
    for i, n in enumerate(nodes):
        widths[i % cols] = max(widths[i % cols], sizes[n][0])
        heights[i // cols] = max(heights[i // cols], sizes[n][1])
    xs = [sum(widths[:c]) + GAP_X * c for c in range(cols)]
    ys = [sum(heights[:r]) + GAP_Y * r for r in range(len(heights))]
    boxes = {n: Box(xs[i % cols], ys[i // cols], *sizes[n]) for i, n in enumerate(nodes)}
    return boxes, [], xs[-1] + widths[-1], ys[-1] + heights[-1]


def acyclic(nodes: Sequence[str], edges: Sequence[tuple[str, str]]
            ) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """The edges with those closing a cycle turned round, and which those were (a
    depth-first search from each node in order; an edge to a node on the stack closes one)."""
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        out[src].append(dst)
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, following = stack[-1]
            nxt = next(following, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif nxt == node:
                continue  # a loop on itself is not drawn
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    kept = [(d, s) if (s, d) in back else (s, d) for s, d in edges if s != d]
    return list(dict.fromkeys(kept)), back


def longest_path_layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]
                        ) -> dict[str, int]:
    """Each node's layer: the length of the longest path reaching it (edges acyclic)."""
    preds: dict[str, int] = {n: 0 for n in nodes}
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        out[src].append(dst)
        preds[dst] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if preds[n] == 0]
    while ready:
        node = ready.pop()
        for nxt in out[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            preds[nxt] -= 1
            if preds[nxt] == 0:
                ready.append(nxt)
    return layer


def layered(nodes: Sequence[str], edges: Sequence[tuple[str, str]],
            sizes: Mapping[str, tuple[float, float]]) -> Placed:
    dag, back = acyclic(nodes, edges)
    layer = longest_path_layers(nodes, dag)
    size = dict(sizes)
    # edges spanning layers become chains through one dummy point per layer crossed
    chains: dict[tuple[str, str], list[str]] = {}
    for src, dst in dag:
        chain = [src]
        for k in range(layer[src] + 1, layer[dst]):
            dummy = f"\0{src}\0{dst}\0{k}"
            layer[dummy] = k
            size[dummy] = (DUMMY_W, 0.0)
            chain.append(dummy)
        chains[(src, dst)] = [*chain, dst]
    depth = max(layer.values()) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    for n in list(nodes) + [d for c in chains.values() for d in c[1:-1]]:
        rows[layer[n]].append(n)
    up: dict[str, list[str]] = {n: [] for n in layer}
    down: dict[str, list[str]] = {n: [] for n in layer}
    for chain in chains.values():
        for a, b in itertools.pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    order_by_barycenter(rows, up, down)
    heights = [max((size[n][1] for n in row), default=0.0) for row in rows]
    tops = [sum(heights[:i]) + GAP_Y * i for i in range(depth)]
    xs = assign_x(rows, up, down, size)
    boxes = {n: Box(xs[n], tops[layer[n]], *size[n]) for n in layer}
    routes = []
    for src, dst in dict.fromkeys(e for e in edges if e[0] != e[1]):
        turned = (src, dst) in back
        chain = chains[(dst, src) if turned else (src, dst)]
        first, last = boxes[chain[0]], boxes[chain[-1]]
        points = ([(first.cx, first.bottom)]
                  + [(boxes[d].cx, tops[layer[d]] + heights[layer[d]] / 2) for d in chain[1:-1]]
                  + [(last.cx, last.y)])
        # an edge turned round is drawn from its source to its target all the same
        routes.append(Route(src, dst, tuple(reversed(points)) if turned else tuple(points)))
    real = {n: boxes[n] for n in nodes}
    width = max(b.right for b in boxes.values())
    return real, routes, width, tops[-1] + heights[-1]


def order_by_barycenter(rows: list[list[str]], up: Mapping[str, list[str]],
                        down: Mapping[str, list[str]]) -> None:
    """Sort each layer by the mean position of its neighbours in the layer before (sweeping
    down) and after (sweeping up), in place; a node without any keeps its place."""
    for _ in range(SWEEPS):
        for sweep, neighbours in ((range(1, len(rows)), up),
                                  (range(len(rows) - 2, -1, -1), down)):
            for i in sweep:
                other = rows[i - 1] if neighbours is up else rows[i + 1]
                pos = {n: k for k, n in enumerate(other)}

                def key(item: tuple[int, str], pos: dict[str, int] = pos,
                        neighbours: Mapping[str, list[str]] = neighbours) -> float:
                    k, n = item
                    near = [pos[m] for m in neighbours[n] if m in pos]
                    return sum(near) / len(near) if near else float(k)

                rows[i] = [n for _, n in sorted(enumerate(rows[i]), key=key)]


def assign_x(rows: list[list[str]], up: Mapping[str, list[str]],
             down: Mapping[str, list[str]],
             size: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Left x of each node: packed, then pulled towards its neighbours' mean centre (those
    below, then those above), each node at least ``GAP_X`` right of the one before it in its
    layer."""
    x: dict[str, float] = {}
    for row in rows:
        left = 0.0
        for n in row:
            x[n] = left
            left += size[n][0] + GAP_X

    def pull(row: list[str], neighbours: Mapping[str, list[str]]) -> None:
        want = {n: (sum(x[m] + size[m][0] / 2 for m in neighbours[n]) / len(neighbours[n])
                    - size[n][0] / 2) if neighbours[n] else x[n] for n in row}
        # pushed right where they collide, then pushed left; the mean of two placements
        # that keep the order and the gaps keeps them too, and centres a crowd on its target
        rightwards, leftwards = {}, {}
        edge = float("-inf")
        for n in row:
            rightwards[n] = max(want[n], edge)
            edge = rightwards[n] + size[n][0] + GAP_X
        edge = float("inf")
        for n in reversed(row):
            leftwards[n] = min(want[n], edge - size[n][0])
            edge = leftwards[n] - GAP_X
        for n in row:
            x[n] = (rightwards[n] + leftwards[n]) / 2

    for _ in range(2):  # up last-but-one, down last: a node ends under its predecessors
        for row in reversed(rows[:-1]):
            pull(row, down)
        for row in rows[1:]:
            pull(row, up)
    shift = min(x.values())
    return {n: v - shift for n, v in x.items()}
