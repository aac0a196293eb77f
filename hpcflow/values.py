"""Encoding of parameter values for the store and the step directory.

Values are JSON where they can be (so that ``hpcflow steps --json`` and a
person reading ``inputs/parameters/x`` see plain data); anything else is
cloudpickled and wrapped in a one-key object. Tuples and sets are pickled so
that their type survives the round trip and the OP's type check passes.

>>> decode(encode({"a": [1, 2.5, "x", None]}))
{'a': [1, 2.5, 'x', None]}
>>> decode(encode((1, 2)))
(1, 2)
"""

from __future__ import annotations

import base64
import json
from typing import Any

PICKLE_TAG = "__hpcflow_pickle__"


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return all(_is_plain_json(v) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items()) and (
            PICKLE_TAG not in value
        )
    return False


def to_jsonable(value: Any) -> Any:
    """A JSON-serialisable form of ``value`` (plain data as is, anything else pickled)."""
    if _is_plain_json(value):
        return value
    import cloudpickle

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
    """How a value reads when substituted into a string (``"iter-{{inputs.parameters.i}}"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)) and _is_plain_json(value):
        return json.dumps(value)
    return str(value)
