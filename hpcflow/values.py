"""Encoding of parameter values for the store and the step directory.

Values are JSON where they can be (so that ``hpcflow steps --json`` and a
person reading ``inputs/parameters/x`` see plain data); anything else is
cloudpickled and wrapped in a one-key object. Tuples and sets are pickled so
that their type survives the round trip and the OP's type check passes.

>>> decode(encode({"a": [1, 2.5, "x", None]}))
{'a': [1, 2.5, 'x', None]}
>>> decode(encode((1, 2)))
(1, 2)

A value whose stored form is large is kept once, by its SHA-256, outside the rows that
use it: rows hold a reference (``{"__hpcflow_value__": {"sha256", "bytes", "kind"}}``)
that ``expand`` turns back into the value. The stored form of a ``str`` is its UTF-8
text, of anything else its JSON; for ``str``, plain ``list`` and ``dict`` values that is
also what dflow's ``inputs/parameters/NAME`` file holds, so a step directory needs that
one file.

>>> ref = externalize("x" * 70000, lambda raw: hashlib.sha256(raw).hexdigest())
>>> ref[VALUE_TAG]["bytes"], ref[VALUE_TAG]["kind"]
(70000, 'str')
>>> expand([ref, 1], lambda info: b"x" * info["bytes"]) == ["x" * 70000, 1]
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import reprlib
from collections.abc import Callable
from typing import Any

PICKLE_TAG = "__hpcflow_pickle__"
VALUE_TAG = "__hpcflow_value__"
#: Values whose stored form is larger are kept once, by digest, outside the rows that use
#: them (and, where a step runs, in one file of its directory).
INLINE_LIMIT = 64 * 1024
#: A parameter this large earns a warning: a file (an artifact) suits it better.
WARN_BYTES = 16 * 2**20


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return all(_is_plain_json(v) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items()) and (
            PICKLE_TAG not in value and VALUE_TAG not in value
        )
    return False


def to_jsonable(value: Any) -> Any:
    """A JSON-serialisable form of ``value`` (plain data as is, anything else pickled)."""
    if _is_plain_json(value):
        return value
    import cloudpickle

    from hpcflow.by_value import register_script_modules

    register_script_modules()  # a value of a class from helpers.py beside the script
    return {PICKLE_TAG: base64.b64encode(cloudpickle.dumps(value)).decode("ascii")}


def from_jsonable(data: Any) -> Any:
    if isinstance(data, dict) and len(data) == 1 and PICKLE_TAG in data:
        import pickle

        return pickle.loads(base64.b64decode(data[PICKLE_TAG]))
    return data


def encode(value: Any) -> str:
    return json.dumps(to_jsonable(value))


def decode(text: str) -> Any:
    return from_jsonable(json.loads(text))


def render_text(value: Any) -> str:
    """How a value reads when substituted into a string (``"iter-{{inputs.parameters.i}}"``):
    its text as a dflow parameter holds it (JSON for data, so ``true`` and ``null``).

    >>> render_text(True), render_text(None), render_text([1, "a"]), render_text(2.5)
    ('true', 'null', '[1, "a"]', '2.5')
    """
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (dict, list)) and _is_plain_json(value):
        return json.dumps(value)
    return str(value)


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxset = _short.maxdict = 6
_short.maxlevel = 3


def short_repr(value: Any) -> str:
    """``repr`` cut down for an error message, whatever the value's size.

    >>> short_repr("x" * 5_000_000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
    >>> short_repr(list(range(10**6)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    return _short.repr(value)


def is_ref(data: Any) -> bool:
    """``data`` is a reference to a value stored by digest."""
    return type(data) is dict and len(data) == 1 and VALUE_TAG in data


def ref_info(data: dict) -> dict:
    """``{"sha256", "bytes", "kind"}`` (and ``"file"`` in a step directory) of a reference."""
    info: dict = data[VALUE_TAG]
    return info


def has_ref(data: Any) -> bool:
    """``data`` is or holds a reference."""
    if is_ref(data):
        return True
    if type(data) is list:
        return any(has_ref(v) for v in data)
    if type(data) is dict:
        return any(has_ref(v) for v in data.values())
    return False


def stored_form(data: Any) -> tuple[bytes, str]:
    """(bytes, kind) of a JSON-able value: a ``str`` as UTF-8 text, the rest as JSON; kind
    ``str``, ``list`` or ``dict`` (plain data, whose bytes are dflow's rendering too) or
    ``object`` (a pickled value, or data holding one)."""
    if isinstance(data, str):
        return data.encode(), "str"
    raw = json.dumps(data).encode()
    plain = _is_plain_json(data)
    kind = "list" if plain and type(data) is list else "dict" if plain and type(data) is dict \
        else "object"
    return raw, kind


def make_ref(raw: bytes, kind: str, digest: str | None = None) -> dict:
    return {VALUE_TAG: {"sha256": digest or hashlib.sha256(raw).hexdigest(), "bytes": len(raw),
                        "kind": kind}}


def read_stored(raw: bytes, kind: str) -> Any:
    """The JSON-able value that ``stored_form`` gave ``raw`` for."""
    return raw.decode() if kind == "str" else json.loads(raw)


def externalize(data: Any, put: Callable[[bytes], str], limit: int = INLINE_LIMIT) -> Any:
    """``data`` as a row keeps it: itself when its stored form is at most ``limit`` bytes (or
    when it holds references: only whole values are stored by digest), else a reference,
    after handing the bytes to ``put`` (which stores them and returns their SHA-256)."""
    if isinstance(data, str) and len(data) * 4 <= limit:
        return data
    if is_ref(data) or has_ref(data):
        return data
    raw, kind = stored_form(data)
    if len(raw) <= limit:
        return data
    return make_ref(raw, kind, put(raw))


def externalize_values(spec: Any, put: Callable[[bytes], str]) -> Any:
    """A workflow spec with every large constant (``{"value": ...}``) stored by digest."""
    if type(spec) is dict:
        if len(spec) == 1 and "value" in spec:
            return {"value": externalize(spec["value"], put)}
        return {k: externalize_values(v, put) for k, v in spec.items()}
    if type(spec) is list:
        return [externalize_values(v, put) for v in spec]
    return spec


def expand(data: Any, read: Callable[[dict], bytes] | None) -> Any:
    """``data`` with every reference replaced by the JSON-able value it names; ``read`` gives
    a reference's bytes from its info (the store, or a step directory's file)."""
    if is_ref(data):
        info = ref_info(data)
        if read is None:
            raise ValueError(f"a value of {info['bytes']} bytes is stored by digest "
                             f"({info['sha256'][:12]}) and nothing here can read it")
        raw = read(info)
        if len(raw) != info["bytes"]:
            raise ValueError(f"the stored value {info['sha256'][:12]} has {len(raw)} bytes, "
                             f"not {info['bytes']}")
        return read_stored(raw, info["kind"])
    if type(data) is list and has_ref(data):
        return [expand(v, read) for v in data]
    if type(data) is dict and has_ref(data):
        return {k: expand(v, read) for k, v in data.items()}
    return data


def summary(data: Any, limit: int = INLINE_LIMIT) -> Any:
    """What ``hpcflow steps --json`` shows of a value: itself, or for one larger than
    ``limit`` ``{"elided": {"bytes", "type", "sha256"}}``.

    >>> summary({"a": 1}), summary("x" * 70000)["elided"]["bytes"]
    ({'a': 1}, 70000)
    """
    if is_ref(data):
        info = ref_info(data)
        return {"elided": {"bytes": info["bytes"], "type": info["kind"],
                           "sha256": info["sha256"]}}
    if isinstance(data, str) and len(data) * 4 <= limit:
        return data
    if has_ref(data):
        return [summary(v, limit) for v in data] if type(data) is list else \
            {k: summary(v, limit) for k, v in data.items()}
    raw, kind = stored_form(data)
    if len(raw) <= limit:
        return data
    return {"elided": {"bytes": len(raw), "type": kind,
                       "sha256": hashlib.sha256(raw).hexdigest()}}
