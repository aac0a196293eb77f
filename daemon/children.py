"""What the planner is given of a running container's children, read from the store.

Planning is per event, so what it reads must not grow with what came before: a Steps is
planned on its last started group only, a DAG on an outline of its tasks (no JSON decoded),
a loop only once none of its items is live, streamed; any other child is read by name,
when a reference names it, through ``StoredSiblings``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from hpcflow.daemon.planner import Node, group_of, steps_slots
from hpcflow.daemon.resolve import Sibling
from hpcflow.daemon.store import Store


def node_of(row: Any) -> Node:
    """A step row as the planner sees it (inputs and outputs decoded when the row has them)."""
    return Node(id=row["id"], slot=row["slot"], name=row["name"], template=row["template"],
                type=row["type"], phase=row["phase"], inputs=json.loads(row["inputs"] or "{}"),
                outputs=json.loads(row["outputs"]) if row["outputs"] else None,
                spec=json.loads(row["spec"]) if row["spec"] else None, reason=row["reason"],
                depth=row["depth"])


def _loop_item(row: Any) -> Node:
    """A loop item as its loop's end is planned on: no inputs, and only the part of its
    spec that says how it counts (a 100,000-item loop is not 100,000 decoded specs)."""
    group = json.loads(row["slice_group"]) if row["slice_group"] else None
    return Node(id=row["id"], slot=row["slot"], name=row["name"], template=row["template"],
                type=row["type"], phase=row["phase"], inputs={},
                outputs=json.loads(row["outputs"]) if row["outputs"] else None,
                spec={"slice_group": group} if group else None, reason=row["reason"],
                depth=row["depth"])


class StoredSiblings(MutableMapping[str, Sibling]):
    """A container's children by name, each read from the store (one indexed lookup) the
    first time a reference names it; the planner's own additions (a task made final in
    the same pass) are kept in memory."""

    def __init__(self, store: Store, wf_id: str, parent_id: int,
                 slot_of: dict[str, str] | None) -> None:
        self._store, self._wf_id, self._parent_id = store, wf_id, parent_id
        #: name -> slot (a Steps' slots carry their group); None: the slot is the name.
        self._slot_of = slot_of
        self._known: dict[str, Sibling | None] = {}

    def __getitem__(self, name: str) -> Sibling:
        if name not in self._known:
            slot = name if self._slot_of is None else self._slot_of.get(name)
            row = None if slot is None else self._store.child_in_slot(
                self._wf_id, self._parent_id, slot)
            self._known[name] = None if row is None else Sibling(
                row["name"], row["phase"], json.loads(row["inputs"] or "{}"),
                json.loads(row["outputs"]) if row["outputs"] else None)
        found = self._known[name]
        if found is None:
            raise KeyError(name)
        return found

    def __setitem__(self, name: str, sibling: Sibling) -> None:
        self._known[name] = sibling

    def __delitem__(self, name: str) -> None:
        self._known[name] = None

    def __iter__(self) -> Iterator[str]:  # only what was read: the planner looks up by name
        return (name for name, sibling in self._known.items() if sibling is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def planning_input(store: Store, row: Any, template: dict,
                   slots_of: Callable[[dict], dict[str, str]] = steps_slots
                   ) -> tuple[Iterable[Node], StoredSiblings | None] | None:
    """The children to plan the running container ``row`` on, and its siblings by name;
    None when nothing can happen yet (a Steps or a loop with a live child waits for it).
    ``slots_of`` gives a Steps template's slots by step name (the service keeps them)."""
    node_id, wf_id = row["id"], row["workflow_id"]
    if row["type"] == "StepGroup":
        if store.has_live_children(node_id):
            return None
        # streamed: a loop of 100,000 items ends without 100,000 of them in memory
        return (_loop_item(c) for c in store.loop_items_outline(node_id)), None
    if template["kind"] == "steps":
        if store.has_live_children(node_id):
            return None
        last = store.last_child_slot(node_id)
        group = [] if last is None else store.children_in_slots(
            wf_id, node_id, f"{group_of(last)}.", f"{group_of(last)}/")  # '/' follows '.'
        return ([node_of(c) for c in group],
                StoredSiblings(store, wf_id, node_id, slots_of(template)))
    return ([node_of(c) for c in store.children_outline(node_id)],
            StoredSiblings(store, wf_id, node_id, None))
