"""Kubernetes label selectors and the Argo Server's ``fields`` response filter."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .apierrors import INVALID_ARGUMENT, ApiError

Predicate = Callable[[dict[str, str]], bool]

_SET_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")
_KEY_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Predicate:
    m = _SET_RE.match(text)
    if m:
        key, op = m.group(1), m.group(2)
        values = {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    m = _CMP_RE.match(text)
    if m:
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    m = _KEY_RE.match(text)
    if m:
        negate, key = m.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ApiError(INVALID_ARGUMENT, f"unable to parse requirement: {text.strip()!r}")


def label_selector(selector: str) -> Predicate:
    """``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``; ``,`` ANDs."""
    preds = [_requirement(part) for part in _split_requirements(selector or "")]
    return lambda labels: all(p(labels) for p in preds)


class FieldCleaner:
    """The ``fields`` query parameter, with the semantics of Argo's util/fields Cleaner.

    ``a.b,c`` keeps only those paths (and what lies under them); a leading ``-`` drops them
    instead. Paths are dotted JSON keys, lists are traversed transparently, and a path is
    "on the way" to a listed field when the listed field starts with it (a plain string
    prefix test, as Argo does).
    """

    def __init__(self, spec: str | None) -> None:
        self.exclude = False
        self.fields: set[str] = set()
        if spec:
            if spec.startswith("-"):
                spec, self.exclude = spec[1:], True
            self.fields = set(spec.split(","))

    def clean(self, obj: Any) -> Any:
        if self.fields:
            self._clean([], obj)
        return obj

    def _clean(self, path: list[str], item: Any) -> None:
        if isinstance(item, dict):
            for key in list(item):
                field_path = ".".join([*path, key])
                path_in = field_path in self.fields
                parent_in = path_in or any(f.startswith(field_path) for f in self.fields)
                if (self.exclude and not path_in) or (not self.exclude and parent_in):
                    if not path_in:
                        self._clean([*path, key], item[key])
                else:
                    del item[key]
        elif isinstance(item, list):
            for element in item:
                self._clean(path, element)
