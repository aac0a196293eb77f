"""The layered layout: no two nodes overlap, edges go down from one layer to a later one,
group boxes hold their members (nested boxes inside), crossings are reduced, and cycles
(through a folded "N more" node) do not break it."""

import itertools
import random

import pytest

from hpcflow.ui.graph_model import Graph, GraphNode, build_graph
from hpcflow.ui.layout import Box, acyclic, layout, longest_path_layers, order_by_barycenter
from tests.unit.ui_graphs import (
    FAN_SPEC,
    MIXED_SPEC,
    diamond_rows,
    diamond_spec,
    fan_out,
    mixed_rows,
)


def _random_dag(seed: int, size: int = 25) -> Graph:
    """A DAG of ``size`` tasks, each depending on up to three earlier ones."""
    rng = random.Random(seed)
    tasks = []
    for i in range(size):
        deps = sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        tasks.append({"name": f"t{i}", "template": "leaf", "dependencies": deps})
    spec = {"entrypoint": "dag", "templates": {"dag": {"kind": "dag", "tasks": tasks},
                                              "leaf": {"kind": "python"}}}
    rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "DAG", "phase": "Running"}]
    rows += [{"id": 2 + i, "parent_id": 1, "name": f"t{i}" + "x" * rng.randrange(30),
              "type": "Pod", "phase": "Succeeded"} for i in range(size)]
    # names with a tail: the spec names them t<i>; give the rows those names back
    for r, t in zip(rows[1:], tasks, strict=True):
        r["name"] = t["name"]
    return build_graph(rows, spec, fold=0)


GRAPHS = {
    "mixed": lambda: build_graph(mixed_rows(), MIXED_SPEC, fold=10),
    "diamond": lambda: build_graph(diamond_rows(), diamond_spec()),
    "dag-folded": lambda: build_graph(diamond_rows(8), diamond_spec(8), fold=3),
    "fan-10000": lambda: build_graph(fan_out(10_000, {77: "Failed"}), FAN_SPEC, fold=30),
    **{f"random-{s}": (lambda s=s: _random_dag(s)) for s in range(5)},
}


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_no_two_siblings_overlap_and_groups_hold_their_members(name):
    graph = GRAPHS[name]()
    drawn = layout(graph)
    assert set(drawn.boxes) == set(graph.nodes)
    for node in graph.nodes.values():
        siblings = node.children if node.kind == "group" else []
        for a, b in itertools.combinations(siblings, 2):
            assert not _overlap(drawn.boxes[a], drawn.boxes[b]), (a, b)
        outer = drawn.boxes[node.id]
        for child in siblings:
            inner = drawn.boxes[child]
            assert outer.x < inner.x and inner.right < outer.right, (node.id, child)
            assert outer.y < inner.y and inner.bottom < outer.bottom, (node.id, child)
    # leaves anywhere never overlap (boxes nest, so siblings apart means all apart)
    leaves = [drawn.boxes[n] for n, node in graph.nodes.items() if node.kind != "group"]
    for a, b in itertools.combinations(leaves, 2):
        assert not _overlap(a, b)
    for box in drawn.boxes.values():
        assert box.x >= 0 and box.y >= 0 and box.right <= drawn.width
        assert box.bottom <= drawn.height


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_edges_go_down_from_their_source_to_their_target(name):
    graph = GRAPHS[name]()
    drawn = layout(graph)
    assert {(r.src, r.dst) for r in drawn.routes} == set(graph.edges)
    for route in drawn.routes:
        src, dst = drawn.boxes[route.src], drawn.boxes[route.dst]
        (x0, y0), (x1, y1) = route.points[0], route.points[-1]
        assert y0 == src.bottom and src.x <= x0 <= src.right
        assert y1 == dst.y and dst.x <= x1 <= dst.right
        assert src.bottom < dst.y  # the target is in a later layer
        ys = [y for _, y in route.points]
        assert ys == sorted(ys), route  # never up


def test_a_long_edge_is_routed_through_the_layers_it_crosses():
    drawn = layout(build_graph(diamond_rows(), diamond_spec()))
    # a -> b -> d and a -> c -> d: every edge spans one layer
    assert all(len(r.points) == 2 for r in drawn.routes)
    rows = diamond_rows(1)
    spec = diamond_spec(1)
    spec["templates"]["dag"]["tasks"][-1]["dependencies"] = ["a", "d"]  # a -> t0 spans 3
    drawn = layout(build_graph(rows, spec))
    long = next(r for r in drawn.routes if r.src == "s2" and r.dst == "s6")
    assert len(long.points) == 4  # through layers 1 and 2
    inside = [b for n, b in drawn.boxes.items() if n in ("s3", "s4", "s5")]
    for x, y in long.points[1:-1]:
        assert not any(b.x <= x <= b.right and b.y <= y <= b.bottom for b in inside)


def test_barycenter_ordering_removes_a_crossing():
    rows = [["a", "b"], ["c", "d"]]
    up = {"a": [], "b": [], "c": ["b"], "d": ["a"]}
    down = {"a": ["d"], "b": ["c"], "c": [], "d": []}
    order_by_barycenter(rows, up, down)
    position = {n: i for row in rows for i, n in enumerate(row)}
    assert (position["a"] < position["b"]) == (position["d"] < position["c"])


def test_layers_are_longest_paths_and_cycles_are_turned_round():
    nodes = ["a", "b", "c", "d"]
    assert longest_path_layers(nodes, [("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")]) == \
        {"a": 0, "b": 1, "c": 2, "d": 1}
    edges, back = acyclic(nodes, [("a", "b"), ("b", "c"), ("c", "a"), ("d", "d")])
    assert back == {("c", "a")} and ("a", "c") in edges and ("d", "d") not in edges


def test_a_cycle_through_a_more_node_is_still_laid_out():
    graph = Graph("wf", "wf", "Running")
    graph.nodes["s1"] = GraphNode("s1", "group", "wf", "Running", 1, None, group="DAG",
                                  children=["s2", "more-s1", "s3"])
    graph.nodes["s2"] = GraphNode("s2", "step", "a", "Succeeded", 2, "s1")
    graph.nodes["more-s1"] = GraphNode("more-s1", "more", "5 more", "", 1, "s1",
                                       counts={"Succeeded": 5})
    graph.nodes["s3"] = GraphNode("s3", "step", "b", "Running", 3, "s1")
    graph.roots = ["s1"]
    graph.edges = [("s2", "more-s1"), ("more-s1", "s3"), ("s3", "more-s1")]
    drawn = layout(graph)
    assert {(r.src, r.dst) for r in drawn.routes} == set(graph.edges)
    assert not _overlap(drawn.boxes["s2"], drawn.boxes["s3"])
