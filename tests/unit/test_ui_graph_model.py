"""The graph model from plain rows and a spec: folding keeps the failed and running steps,
counts add up, nested groups nest, a DAG's and a Steps' edges, and a fan-out of any size
gives a graph of the same few nodes."""

import json
import tracemalloc

from hpcflow.ui.graph_model import build_graph
from tests.unit.ui_graphs import (
    FAN_SPEC,
    MIXED_SPEC,
    diamond_rows,
    diamond_spec,
    fan_out,
    mixed_rows,
)


def _names(graph, group):
    return [graph.nodes[c].name for c in graph.nodes[group].children]


def test_folding_keeps_the_notable_items_and_counts_the_rest():
    phases = {150: "Failed", 170: "Running", 180: "Error", 190: "Pending"}
    graph = build_graph(fan_out(200, phases), FAN_SPEC, fold=10)
    fan = graph.nodes["s2"]
    assert fan.kind == "group" and fan.group == "loop"
    shown = _names(graph, "s2")
    # the first 10, the failed, running and error ones, the folded ones, the last
    assert shown == [f"fan({i}:{i})" for i in range(10)] + \
        ["fan(150:150)", "fan(170:170)", "fan(180:180)", "186 more", "fan(199:199)"]
    more = graph.nodes["more-s2"]
    assert more.kind == "more" and more.parent == "s2"
    assert more.counts == {"Succeeded": 185, "Pending": 1}  # a Pending one is not notable
    # the group counts every item; shown items plus folded ones are all of them
    assert fan.counts == {"Succeeded": 196, "Failed": 1, "Running": 1, "Error": 1,
                          "Pending": 1}
    shown_steps = [graph.nodes[c] for c in fan.children if graph.nodes[c].kind == "step"]
    assert len(shown_steps) + more.total == fan.total == 200
    assert graph.nodes["s1"].counts == fan.counts  # the root counts the leaves below it


def test_fold_zero_shows_every_step():
    graph = build_graph(fan_out(50), FAN_SPEC, fold=0)
    assert len(graph.nodes["s2"].children) == 50 and "more-s2" not in graph.nodes


def test_nested_groups_kinds_and_parents():
    graph = build_graph(mixed_rows(), MIXED_SPEC, fold=10)
    kinds = {graph.nodes[f"s{i}"].name: graph.nodes[f"s{i}"].group for i in range(1, 7)
             if graph.nodes[f"s{i}"].kind == "group"}
    assert kinds == {"wf": "Steps", "fan": "loop", "sliced": "slices", "nested": "Steps",
                     "graph": "DAG"}
    assert graph.roots == ["s1"]
    # "sum", in the spec and not created yet, is drawn as planned
    assert _names(graph, "s1") == ["prep", "fan", "sliced", "nested", "graph", "sum"]
    planned = graph.nodes[graph.nodes["s1"].children[-1]]
    assert (planned.kind, planned.note, planned.phase) == ("planned", "not started", "")
    assert _names(graph, "s5") == ["one", "two"]
    one = next(n for n in graph.nodes.values() if n.name == "one")
    assert one.parent == "s5" and graph.nodes["s5"].parent == "s1"
    assert graph.nodes["s5"].counts == {"Succeeded": 1, "Running": 1}
    failed = next(n for n in graph.nodes.values() if n.phase == "Failed")
    assert failed.reason == "ValueError: <boom>" and failed.parent == "s3"
    json.dumps(graph.to_json())  # JSON-able as it is


def test_dag_edges_are_its_dependencies():
    graph = build_graph(diamond_rows(), diamond_spec())
    ids = {graph.nodes[c].name: c for c in graph.nodes["s1"].children}
    assert sorted(graph.edges) == sorted([(ids["a"], ids["b"]), (ids["a"], ids["c"]),
                                          (ids["b"], ids["d"]), (ids["c"], ids["d"])])


def test_a_dag_task_folded_away_is_reached_through_the_more_node():
    graph = build_graph(diamond_rows(extra_tasks=8), diamond_spec(extra_tasks=8), fold=5)
    shown = _names(graph, "s1")
    assert shown == ["a", "b", "c", "d", "t0", "6 more", "t7"]
    d = next(c for c in graph.nodes["s1"].children if graph.nodes[c].name == "d")
    assert (d, "more-s1") in graph.edges  # d -> t1..t6, folded
    assert sum(1 for e in graph.edges if e == (d, "more-s1")) == 1


def test_steps_edges_run_from_each_parallel_group_to_the_next():
    rows = [*mixed_rows(fan_items=3),
            {"id": 100, "parent_id": 1, "name": "sum", "type": "Pod", "phase": "Pending",
             "reason": None}]
    graph = build_graph(rows, MIXED_SPEC)
    by_name = {graph.nodes[c].name: c for c in graph.nodes["s1"].children}
    middle = ["fan", "sliced", "nested", "graph"]
    top = {(a, b) for a, b in graph.edges if graph.nodes[a].parent == "s1"}
    assert top == {(by_name["prep"], by_name[m]) for m in middle} | \
        {(by_name[m], by_name["sum"]) for m in middle}
    # the nested Steps: one, then two; the loop's items have no edges between them
    assert ("s" + str(next(r["id"] for r in rows if r["name"] == "one")),
            "s" + str(next(r["id"] for r in rows if r["name"] == "two"))) in graph.edges
    assert not [e for e in graph.edges if graph.nodes[e[0]].parent == "s3"]


def test_rows_without_a_spec_still_make_a_graph():
    graph = build_graph(diamond_rows(), {}, fold=2)
    assert graph.edges == [] and len(graph.nodes["s1"].children) == 4  # a, b, 1 more, d


def test_a_fan_out_of_any_size_gives_the_same_few_nodes_in_bounded_memory():
    small = build_graph(fan_out(10_000, {5000: "Failed"}), FAN_SPEC, fold=30)
    assert len(small.nodes) == 2 + 30 + 1 + 1 + 1  # root, loop, 30 first, failed, more, last
    assert small.nodes["s2"].total == 10_000

    def peak(items: int) -> int:
        tracemalloc.start()
        build_graph(fan_out(items), FAN_SPEC, fold=30)  # rows made as they are read
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    ten_thousand, hundred_thousand = peak(10_000), peak(100_000)
    assert hundred_thousand < 1.5 * ten_thousand + 200_000, (ten_thousand, hundred_thousand)


def test_a_steps_folded_within_one_parallel_group_has_no_edges_inside_it():
    spec = {"entrypoint": "main", "templates": {
        "main": {"kind": "steps", "steps": [[{"name": f"p{i}", "template": "leaf"}
                                             for i in range(50)],
                                            [{"name": "after", "template": "leaf"}]]},
        "leaf": {"kind": "python"}}}
    rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "Steps", "phase": "Running"}]
    rows += [{"id": 2 + i, "parent_id": 1, "name": f"p{i}", "type": "Pod",
              "phase": "Succeeded"} for i in range(50)]
    graph = build_graph(rows, spec, fold=5)
    assert graph.edges == []  # one parallel group: the "45 more" is one of it
    graph = build_graph([*rows, {"id": 60, "parent_id": 1, "name": "after", "type": "Pod",
                                 "phase": "Pending"}], spec, fold=5)
    # the first 5, then "45 more" (p5..p49), then after: more sits between the two groups
    firsts = [f"s{2 + i}" for i in range(5)]
    assert sorted(graph.edges) == sorted([(f, "more-s1") for f in firsts] +
                                         [("more-s1", "s60")])


def test_a_dags_tasks_not_created_yet_are_drawn_with_their_edges():
    """The engine creates a task's step when the task can run: the rest of the DAG is drawn
    as planned nodes, joined by its dependencies; once the DAG ended, they were never run."""
    rows = [r for r in diamond_rows() if r["name"] in ("wf", "a", "b")]
    graph = build_graph(rows, diamond_spec())
    ids = {graph.nodes[c].name: c for c in graph.nodes["s1"].children}
    assert sorted(ids) == ["a", "b", "c", "d"]
    assert [graph.nodes[ids[n]].kind for n in "cd"] == ["planned", "planned"]
    assert sorted(graph.edges) == sorted([(ids["a"], ids["b"]), (ids["a"], ids["c"]),
                                          (ids["b"], ids["d"]), (ids["c"], ids["d"])])
    assert graph.nodes[ids["c"]].note == "not started"
    ended = [dict(r, phase="Failed") if r["name"] == "wf" else r for r in rows]
    assert build_graph(ended, diamond_spec()).nodes[ids["d"]].note == "not run"


def test_a_folded_group_gets_no_planned_nodes():
    """Which names a folded group holds is not known: nothing is guessed."""
    spec = diamond_spec(extra_tasks=8)
    rows = [r for r in diamond_rows(extra_tasks=8) if r["name"] != "t7"]
    graph = build_graph(rows, spec, fold=5)
    assert not any(n.kind == "planned" for n in graph.nodes.values())


def test_an_exit_handler_is_drawn_from_its_own_template():
    """``Workflow(on_exit=...)``: the second step without a parent is the exit handler's;
    its not yet made steps come from its template, not from the entrypoint's."""
    spec = {"entrypoint": "main", "on_exit": "handler", "templates": {
        "main": {"kind": "steps", "steps": [[{"name": "a", "template": "t"}]]},
        "handler": {"kind": "steps", "steps": [[{"name": "note", "template": "t"}],
                                               [{"name": "mail", "template": "t"}]]},
        "t": {"kind": "python"}}}
    rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "Steps", "phase": "Failed"},
            {"id": 2, "parent_id": 1, "name": "a", "type": "Pod", "phase": "Failed"},
            {"id": 3, "parent_id": 0, "name": "wf.onExit", "type": "Steps",
             "phase": "Running"},
            {"id": 4, "parent_id": 3, "name": "note", "type": "Pod", "phase": "Running"}]
    graph = build_graph(rows, spec)
    assert graph.roots == ["s1", "s3"]
    planned = [n for n in graph.nodes.values() if n.id.startswith("plan-")]
    assert [(n.parent, n.name) for n in planned] == [("s3", "mail")]
