"""``hpcflow get WF -o json`` with nothing folded, written as it is read.

The whole tree of a 100,000-step workflow built in memory and dumped at once took half a
gigabyte for 62 MB of output. Here a first pass reads only each step's id, parent, type
and phase (a few bytes a step: which groups hold which steps, and every group's leaf
counts, which a group's object gives before its children), and a second writes the tree
depth first, reading the full rows of one group's children a few hundred at a time. The
text is what ``json.dumps(document, indent=2)`` of the folded tree (``tree.build`` with
``fold`` 0, ``get_cmd.node_json``) gives, byte for byte.

>>> rows = [{"id": 1, "parent_id": 0, "type": "Steps", "phase": "Running"},
...         {"id": 2, "parent_id": 1, "type": "StepGroup", "phase": "Running"},
...         {"id": 3, "parent_id": 2, "type": "Pod", "phase": "Succeeded"},
...         {"id": 4, "parent_id": 1, "type": "Pod", "phase": "Failed"}]
>>> shape = Shape.read(rows)
>>> shape.roots, list(shape.children[1]), dict(shape.leaves[1]), dict(shape.leaves[2])
([1], [2, 4], {'Succeeded': 1, 'Failed': 1}, {'Succeeded': 1})
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from hpcflow.cli.tree import LEAF, Node

#: Rows read per query in the second pass (each group's children, in this many at a time).
ROWS_PER_READ = 500


@dataclass
class Shape:
    """Which steps each group holds, in id order (the order ``hpcflow get`` shows), and the
    leaf steps under each group by phase."""

    roots: list[int] = field(default_factory=list)
    children: dict[int, array[int]] = field(default_factory=dict)
    leaves: dict[int, Counter[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, rows: Iterable[Any]) -> Shape:
        """From (id, parent_id, type, phase) rows in id order (a parent comes before its
        children); a step under a parent not seen is left out, as ``tree.build`` does."""
        shape = cls()
        parent_of: dict[int, int | None] = {}  # groups only
        for row in rows:
            step_id, parent_id = int(row["id"]), row["parent_id"] or None
            if parent_id is None:
                shape.roots.append(step_id)
            elif parent_id in shape.children:
                shape.children[parent_id].append(step_id)
            else:
                continue
            if row["type"] == LEAF:
                group = parent_id
                while group is not None:
                    shape.leaves[group][row["phase"]] += 1
                    group = parent_of[group]
            else:
                shape.children[step_id] = array("q")
                shape.leaves[step_id] = Counter()
                parent_of[step_id] = parent_id
        return shape


def _indented(value: Any, depth: int) -> str:
    """``value`` as ``json.dumps(..., indent=2)`` writes it ``depth`` levels down."""
    return json.dumps(value, indent=2).replace("\n", "\n" + "  " * depth)


def _fields(data: Mapping[str, Any], depth: int) -> str:
    """An object's members (no braces), one a line, ``depth`` levels down."""
    pad = "  " * depth
    return ",\n".join(f"{pad}{json.dumps(k)}: {_indented(v, depth)}" for k, v in data.items())


def _rows_of(ids: Sequence[int], read: Callable[[Sequence[int]], list[Any]]
             ) -> Iterator[Any]:
    """The rows of ``ids`` in that order, read ``ROWS_PER_READ`` at a time."""
    for start in range(0, len(ids), ROWS_PER_READ):
        chunk = ids[start:start + ROWS_PER_READ]
        found = {row["id"]: row for row in read(chunk)}
        for step_id in chunk:
            row = found.get(step_id)
            if row is not None:  # removed since the first pass
                yield row


@dataclass
class _List:
    """A JSON list of nodes being written: the rows still to come, its depth, whether a
    node was written, and whether it closes a group's object."""

    rows: Iterator[Any]
    depth: int
    wrote: bool = False
    in_group: bool = True


def write_tree(out: TextIO, head: Mapping[str, Any], shape: Shape,
               read: Callable[[Sequence[int]], list[Any]],
               node_json: Callable[[Node], dict]) -> None:
    """The document ``{**head, "steps": root's leaf counts, "tree": [...]}``, written to
    ``out`` as it is read (``read``: the outline rows of some step ids)."""
    root_leaves = dict(shape.leaves.get(shape.roots[0], {})) if shape.roots else {}
    out.write("{\n" + _fields({**head, "steps": root_leaves}, 1) + ',\n  "tree": [')
    lists = [_List(_rows_of(shape.roots, read), depth=1, in_group=False)]
    while lists:
        current = lists[-1]
        row = next(current.rows, None)
        if row is None:
            lists.pop()
            out.write(f"\n{'  ' * current.depth}]" if current.wrote else "]")
            if current.in_group:
                out.write(f"\n{'  ' * (current.depth - 1)}}}")
            continue
        out.write(",\n" if current.wrote else "\n")
        current.wrote = True
        depth = current.depth + 1
        out.write("  " * depth)
        kids = shape.children.get(row["id"])
        if row["type"] == LEAF or kids is None:
            out.write(_indented(node_json(Node(row)), depth))
            continue
        data = node_json(Node(row, leaves=shape.leaves[row["id"]]))
        del data["children"]  # written as they are read, last (where json.dumps puts them)
        out.write("{\n" + _fields(data, depth + 1) + f',\n{"  " * (depth + 1)}"children": [')
        lists.append(_List(_rows_of(kids, read), depth=depth + 1))
    out.write("\n}\n")
