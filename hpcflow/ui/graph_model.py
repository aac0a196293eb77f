"""A workflow's graph as data: its steps, its groups (a loop, slices, a Steps, a DAG; nested
Steps inside their parent's box), the edges between siblings and each node's phase.

The steps come from the store's outline, streamed in id order, and are folded as
``hpcflow get`` folds them (``hpcflow.cli.tree``): a group with more than ``fold`` children
keeps its first ``fold``, the failed, in error and running ones (up to ``fold`` more) and its
last, and one "N more" node counts the others by phase. The graph is then bounded by what it
shows, not by the workflow's size. The edges come from the spec: a DAG's dependencies, and a
Steps' order from each parallel group to the next.

Only ``workflow_graph`` reads the store; ``build_graph`` works on plain rows and the spec.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.cli.tree import LEAF, Node, Tree
from hpcflow.phases import STEP_FINAL, WORKFLOW_FINAL

#: What a group is, by its step type (a StepGroup is a loop, or slices when it slices).
GROUP_KINDS = {"Steps": "Steps", "DAG": "DAG", "StepGroup": "loop"}


@dataclass
class GraphNode:
    """A step, a group of steps, or the children a group folds away (``kind`` "more")."""

    id: str
    kind: str  # "step" | "group" | "more" | "planned"
    name: str
    phase: str
    #: The step's id in the store (a "more" node's: its group's).
    step_id: int
    #: The enclosing group's node id (None for the root).
    parent: str | None
    #: A group's kind: "Steps", "DAG", "loop" or "slices".
    group: str | None = None
    #: A group's leaf steps by phase; a "more" node's folded children by phase.
    counts: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    children: list[str] = field(default_factory=list)
    #: A group drawn closed: its box and counts, none of its members.
    collapsed: bool = False
    #: A "planned" node's second line: a DAG's task or a Steps' step the engine has not
    #: created yet ("not started"), or never will, its group having ended ("not run").
    note: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Graph:
    """Nodes in drawing order (a group before its members), edges between siblings."""

    workflow: str
    name: str
    phase: str
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "name": self.name, "phase": self.phase,
                "roots": list(self.roots),
                "nodes": [asdict(n) for n in self.nodes.values()],
                "edges": [list(e) for e in self.edges]}


def node_id(step_id: int) -> str:
    return f"s{step_id}"


def more_id(group_step_id: int) -> str:
    return f"more-s{group_step_id}"


def planned_id(group_step_id: int, position: int) -> str:
    return f"plan-s{group_step_id}-{position}"


def build_graph(rows: Iterable[Mapping[str, Any]], spec: Mapping[str, Any], fold: int = 30,
                workflow: str = "", name: str = "", phase: str = "",
                collapsed: Collection[int] = ()) -> Graph:
    """The graph of a workflow whose steps are ``rows`` (in id order: ``id``, ``parent_id``,
    ``name``, ``type``, ``phase``, ``reason``) and whose stored spec is ``spec``.

    >>> rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "DAG", "phase": "Running"},
    ...         {"id": 2, "parent_id": 1, "name": "a", "type": "Pod", "phase": "Succeeded"},
    ...         {"id": 3, "parent_id": 1, "name": "b", "type": "Pod", "phase": "Running"}]
    >>> spec = {"entrypoint": "wf", "templates": {"wf": {"kind": "dag", "tasks": [
    ...     {"name": "a", "template": "t", "dependencies": []},
    ...     {"name": "b", "template": "t", "dependencies": ["a"]}]}, "t": {"kind": "python"}}}
    >>> g = build_graph(rows, spec)
    >>> g.edges, g.nodes["s1"].counts
    ([('s2', 's3')], {'Succeeded': 1, 'Running': 1})

    Groups whose step ids are in ``collapsed`` are drawn closed (their counts, no members):

    >>> g = build_graph(rows, spec, collapsed={1})
    >>> g.nodes["s1"].collapsed, g.nodes["s1"].children, g.edges, sorted(g.nodes)
    (True, [], [], ['s1'])
    """
    tree = Tree(fold)
    for row in rows:
        tree.add(row)
    graph = Graph(workflow, name, phase)
    templates = spec.get("templates") or {}
    # the steps without a parent, in the order made: the entrypoint's, then the exit
    # handler's (Workflow(on_exit=...)), which runs once the entrypoint ended
    top_templates = [spec.get("entrypoint", ""), spec.get("on_exit") or ""]
    for position, root in enumerate(tree.finish()):
        graph.roots.append(node_id(root.row["id"]))
        template = templates.get(top_templates[min(position, 1)])
        _add(graph, root, None, template, None, templates, frozenset(collapsed))
    return graph


def _add(graph: Graph, node: Node, parent: str | None, template: Mapping | None,
         step_spec: Mapping | None, templates: Mapping, collapsed: frozenset[int]) -> None:
    row = node.row
    me = node_id(row["id"])
    reason = _get(row, "reason")
    if parent is not None:
        graph.nodes[parent].children.append(me)
    if row["type"] == LEAF:
        graph.nodes[me] = GraphNode(me, "step", str(row["name"]), row["phase"], row["id"],
                                    parent, reason=reason)
        return
    kind = GROUP_KINDS.get(row["type"], str(row["type"]))
    if kind == "loop" and _slices(step_spec, template):
        kind = "slices"
    graph.nodes[me] = GraphNode(me, "group", str(row["name"]), row["phase"], row["id"],
                                parent, group=kind, counts=dict(node.leaves), reason=reason,
                                collapsed=row["id"] in collapsed)
    if row["id"] in collapsed:
        return
    specs = _child_specs(row["type"], template, step_spec)
    for child in node.children:
        child_spec = specs.get(child.row["name"]) if specs is not None else step_spec
        child_template = templates.get(child_spec["template"]) if child_spec else None
        _add(graph, child, me, child_template, child_spec, templates, collapsed)
    more = None
    if node.folded:
        more = more_id(row["id"])
        total = sum(node.folded.values())
        graph.nodes[more] = GraphNode(more, "more", f"{total} more", "", row["id"], me,
                                      counts=dict(node.folded))
        # drawn where the folded ones were: before the last child shown
        children = graph.nodes[me].children
        children.insert(max(0, len(children) - 1), more)
    if template is not None and not node.folded:
        _add_planned(graph, me, row, specs)
    if template is not None and row["type"] == "DAG":
        graph.edges += dag_edges(graph, me, template, more)
    elif template is not None and row["type"] == "Steps":
        graph.edges += steps_edges(graph, me, template, more)


#: A group's phases after which it creates no more steps (the root's may be a workflow's).
_ENDED = STEP_FINAL | WORKFLOW_FINAL


def _add_planned(graph: Graph, me: str, row: Mapping[str, Any],
                 specs: dict[str, Mapping] | None) -> None:
    """The tasks of a DAG and the steps of a Steps its spec names and the store does not
    have yet, as "planned" nodes: the engine creates a step when it can run, so the whole
    shape of a workflow is drawn before it has run (a group that folded children away is
    left as it is: which names it holds is not known)."""
    if not specs:  # a loop's items take its own spec (None), a DAG or Steps names them
        return
    shown = {graph.nodes[c].name for c in graph.nodes[me].children}
    note = "not run" if row["phase"] in _ENDED else "not started"
    for position, name in enumerate(specs):
        if name not in shown:
            nid = planned_id(row["id"], position)
            graph.nodes[nid] = GraphNode(nid, "planned", str(name), "", row["id"], me,
                                         note=note)
            graph.nodes[me].children.append(nid)


def _get(row: Mapping[str, Any], key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


def _slices(step_spec: Mapping | None, template: Mapping | None) -> bool:
    return bool((step_spec or {}).get("slices") or (template or {}).get("slices"))


def _child_specs(step_type: str, template: Mapping | None,
                 step_spec: Mapping | None) -> dict[str, Mapping] | None:
    """A Steps' or DAG's children's step specs by name; None for a loop (its items take the
    loop's own step spec and template)."""
    if step_type == "StepGroup":
        return None
    if template is None:
        return {}
    if step_type == "DAG":
        return {t["name"]: t for t in template.get("tasks") or []}
    return {s["name"]: s for group in template.get("steps") or [] for s in group}


def _shown_by_name(graph: Graph, group: str) -> dict[str, str]:
    return {graph.nodes[c].name: c for c in graph.nodes[group].children
            if graph.nodes[c].kind != "more"}


def dag_edges(graph: Graph, group: str, template: Mapping,
              more: str | None) -> list[tuple[str, str]]:
    """A DAG's dependencies between the tasks shown; a dependency on or of a task folded
    away goes to or from the "N more" node."""
    shown = _shown_by_name(graph, group)
    edges: dict[tuple[str, str], None] = {}  # (an ordered set)
    for task in template.get("tasks") or []:
        dst = shown.get(task["name"], more)
        for dep in task.get("dependencies") or []:
            src = shown.get(dep, more)
            if src is not None and dst is not None and src != dst:
                edges[(src, dst)] = None
    return list(edges)


def steps_edges(graph: Graph, group: str, template: Mapping,
                more: str | None) -> list[tuple[str, str]]:
    """A Steps' order: every step of a parallel group to every step of the next group shown.
    The "N more" node stands between the groups of the children before and after it."""
    index = {s["name"]: gi for gi, grp in enumerate(template.get("steps") or []) for s in grp}
    children = graph.nodes[group].children
    keys: list[float] = []
    for child in children:
        before = keys[-1] if keys else -1.0
        keys.append(before if child == more else float(index.get(graph.nodes[child].name,
                                                                  before)))
    if more is not None:
        at = children.index(more)
        before = keys[at - 1] if at else -1.0
        after = keys[at + 1] if at + 1 < len(keys) else before + 1
        # folded from one parallel group: one of it; else in a layer of its own between
        keys[at] = before if before == after else before + 0.5
    keyed: dict[float, list[str]] = {}
    for child, key in zip(children, keys, strict=True):
        keyed.setdefault(key, []).append(child)
    layers = [keyed[k] for k in sorted(keyed)]
    return [(a, b) for before, after in itertools.pairwise(layers)
            for a in before for b in after]


def workflow_graph(home: Path, wf_id: str, fold: int = 30,
                   collapsed: Collection[int] = ()) -> Graph:
    """The graph of workflow ``wf_id`` of ``home``, read from its store (steps streamed in id
    order, folded as they come; the groups of ``collapsed`` closed); an unknown id raises
    ``NotFoundError``."""
    from hpcflow.daemon import client

    wf = client.workflow_row(home, wf_id)
    spec = json.loads(wf["spec"]) if wf["spec"] else {}
    rows: Iterable[Any] = ()
    if wf["root_step"] is not None:
        rows = client.store_for(home).iter_step_outline(wf["id"])
    return build_graph(rows, spec, fold, workflow=str(wf["id"]), name=str(wf["name"]),
                       phase=str(wf["phase"]), collapsed=collapsed)
