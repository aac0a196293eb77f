"""``hpcflow get``: a workflow's steps as a tree, as ``argo get`` shows one.

Steps arrive streamed in id order (a parent is always created before its children), and the
tree keeps what will be shown: a group (a loop, slices, a Steps or DAG) with more than
``fold`` children keeps its first ``fold``, then only those worth a look (failed, in error,
running: up to ``fold`` more) and its last one; the others are counted by phase. Memory is
then bounded by what is shown, not by the workflow's size, and every group still counts all
the leaf steps under it.

>>> rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "Steps", "phase": "Running"}]
>>> rows += [{"id": i, "parent_id": 1, "name": f"s{i}", "type": "Pod",
...           "phase": "Failed" if i == 7 else "Succeeded"} for i in range(2, 12)]
>>> root = build(rows, fold=2)[0]
>>> [c.row["name"] for c in root.children], dict(root.folded), dict(root.leaves)
(['s2', 's3', 's7', 's11'], {'Succeeded': 6}, {'Succeeded': 9, 'Failed': 1})
>>> for prefix, node, summary in lines([root]):
...     print(prefix + (node.row["name"] if node else summary))
wf
├─ s2
├─ s3
├─ s7
├─ … 6 more (6 Succeeded)
└─ s11
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Children shown whatever the folding: they are why someone looks.
NOTABLE = frozenset({"Failed", "Error", "Running"})
LEAF = "Pod"


@dataclass
class Node:
    row: Any
    children: list[Node] = field(default_factory=list)
    #: Children left out, by phase.
    folded: Counter[str] = field(default_factory=Counter)
    #: Leaf steps anywhere under this node, by phase (a group's counts).
    leaves: Counter[str] = field(default_factory=Counter)
    #: How many children were shown for being notable after the first ``fold``.
    notable_kept: int = 0
    #: The last child so far, kept only while no later one came (it is shown as the last).
    tail: Node | None = None


class Tree:
    """Builds the folded tree from rows streamed in id order (``fold`` 0: nothing folded)."""

    def __init__(self, fold: int = 0) -> None:
        self.fold = fold
        self.roots: list[Node] = []
        self._kept: dict[int, Node] = {}
        #: Every group's parent (kept or not), to count leaves into the groups shown.
        self._parent: dict[int, int | None] = {}

    def add(self, row: Any) -> None:
        step_id, parent_id = row["id"], row["parent_id"] or None  # the root's parent is 0
        if row["type"] == LEAF:  # a leaf is nobody's parent: only groups are remembered
            self._count_leaf(parent_id, row["phase"])
        else:
            self._parent[step_id] = parent_id
        parent = self._kept.get(parent_id) if parent_id is not None else None
        if parent_id is not None and parent is None:
            return  # under a child that was folded away
        node = Node(row)
        if parent is None:
            self._keep(node, None)
        else:
            self._place(parent, node)

    def _count_leaf(self, parent_id: int | None, phase: str) -> None:
        while parent_id is not None:
            kept = self._kept.get(parent_id)
            if kept is not None:
                kept.leaves[phase] += 1
            parent_id = self._parent.get(parent_id)

    def _keep(self, node: Node, parent: Node | None) -> None:
        self._kept[node.row["id"]] = node
        if parent is None:
            self.roots.append(node)
        else:
            parent.children.append(node)

    def _drop(self, parent: Node, node: Node) -> None:
        parent.folded[node.row["phase"]] += 1
        self._forget(node)

    def _forget(self, node: Node) -> None:
        self._kept.pop(node.row["id"], None)
        for child in node.children:
            self._forget(child)
        if node.tail is not None:
            self._forget(node.tail)

    def _place(self, parent: Node, node: Node) -> None:
        shown = len(parent.children)
        if not self.fold or shown < self.fold:
            self._keep(node, parent)
            return
        # past the first ``fold``: the previous last child stays only if it is notable
        previous = parent.tail
        if previous is not None:
            parent.tail = None
            if previous.row["phase"] in NOTABLE and parent.notable_kept < self.fold:
                parent.notable_kept += 1
                parent.children.append(previous)
            else:
                self._drop(parent, previous)
        parent.tail = node
        self._kept[node.row["id"]] = node

    def finish(self) -> list[Node]:
        """The roots, each group's last child in place."""
        for node in list(self._kept.values()):
            if node.tail is not None:
                node.children.append(node.tail)
                node.tail = None
        return self.roots


def build(rows: Iterable[Any], fold: int = 0) -> list[Node]:
    tree = Tree(fold)
    for row in rows:
        tree.add(row)
    return tree.finish()


def lines(roots: list[Node]) -> Iterator[tuple[str, Node | None, str]]:
    """(tree prefix, node, "") per node shown, depth first; a group's folded children come
    as one (prefix, None, their summary), before its last child."""
    for root in roots:
        yield "", root, ""
        yield from _below(root, "")


def _below(node: Node, prefix: str) -> Iterator[tuple[str, Node | None, str]]:
    entries: list[Node | str] = list(node.children)
    summary = folded_text(node.folded)
    if summary:  # the folded children came before the last one shown
        entries.insert(max(0, len(entries) - 1), summary)
    for i, entry in enumerate(entries):
        last = i == len(entries) - 1
        connector = prefix + ("└─ " if last else "├─ ")
        if isinstance(entry, str):
            yield connector, None, entry
        else:
            yield connector, entry, ""
            yield from _below(entry, prefix + ("   " if last else "│  "))


def folded_text(folded: Mapping[str, int]) -> str:
    total = sum(folded.values())
    if not total:
        return ""
    parts = ", ".join(f"{n} {phase}" for phase, n in sorted(folded.items(),
                                                               key=lambda kv: -kv[1]))
    return f"… {total} more ({parts})"
