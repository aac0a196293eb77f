"""Strict type checking of OP inputs and outputs against their signs.

The check is structural for typing generics (``List[int]``, ``Dict[str, float]``,
``Optional[str]``, ``Union``) and lenient only where Python is: an ``int`` is
accepted for ``float``.

>>> matches(1, float), matches([1, 2], list[int]), matches({"a": "x"}, dict[str, int])
(True, True, False)
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from hpcflow.python.signs import NestedDict


def matches(value: Any, type_: Any) -> bool:
    if type_ is Any or type_ is object or (type_ is None and value is None):
        return True
    if isinstance(type_, str):  # unresolved forward reference: nothing to check against
        return True
    if type_ is type(None):
        return value is None
    if type_ is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or isinstance(
            value, float
        )
    origin = get_origin(type_)
    if origin is None:
        if isinstance(type_, typing.TypeVar):
            return True
        if isinstance(type_, type):
            return isinstance(value, type_)
        return True
    args = get_args(type_)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is NestedDict:
        return _matches_nested(value, args[0] if args else Any)
    if origin in (list, list):
        return isinstance(value, list) and (not args or all(matches(v, args[0]) for v in value))
    if origin in (tuple, tuple):
        if not isinstance(value, tuple):
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return not args or all(matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(
            matches(v, a) for v, a in zip(value, args, strict=True))
    if origin in (dict, dict):
        if not isinstance(value, dict):
            return False
        if not args:
            return True
        return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    if origin in (set, frozenset):
        return isinstance(value, origin) and (not args or all(matches(v, args[0]) for v in value))
    if isinstance(origin, type):
        return isinstance(value, origin)
    return True


def _matches_nested(value: Any, leaf: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _matches_nested(v, leaf) for k, v in value.items())
    return matches(value, leaf)


def type_name(type_: Any) -> str:
    if isinstance(type_, type) and get_origin(type_) is None:
        return type_.__name__
    return repr(type_).replace("typing.", "")


def describe(value: Any) -> str:
    """The type and a short ``repr`` (``reprlib``: a large value is never rendered whole)."""
    from hpcflow.values import short_repr

    return f"{type(value).__name__} {short_repr(value)}"


def path_like(value: Any) -> bool:
    return isinstance(value, (str, Path))


_JSON_TYPES = (bool, int, float, list, dict)


def as_dflow_reads(value: Any, type_: Any) -> Any:
    """A constant parameter as dflow's OP reads it (its parameters travel as text): a
    ``str`` sign gets a number, bool, list or dict as its JSON text; another sign given a
    ``str`` gets the text decoded as JSON when that fits the sign. Anything else as given.

    >>> as_dflow_reads(3, str), as_dflow_reads("3", int), as_dflow_reads("one", int)
    ('3', 3, 'one')
    """
    from hpcflow.values import render_text

    if type_ is str:
        return render_text(value) if isinstance(value, _JSON_TYPES) else value
    if isinstance(value, str) and type_ not in (None, Any, object) and not matches(value, type_):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if matches(decoded, type_) else value
    return value
