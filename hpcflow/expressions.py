"""Loop and condition helpers with dflow's names: ``argo_range``, ``argo_sequence``,
``argo_len``, ``argo_sum``, ``argo_concat``, ``argo_enumerate``, ``if_expression``. They build
data that the planner evaluates at run time."""

from __future__ import annotations

from typing import Any

from hpcflow import values
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import Expression, InputParameter, OutputParameter, Reference, StepParameterRef


def _arg(value: Any) -> Any:
    from hpcflow.artifact_part import ArtifactPart
    from hpcflow.artifacts import StoredArtifact

    if isinstance(value, Expression):
        return {"calc": str(value)}
    if isinstance(value, StoredArtifact):
        return {"artifact": value.base_ref, **value.part_spec()}
    if isinstance(value, Reference):
        part = value.part_spec() if isinstance(value, ArtifactPart) else {}
        return {"expr": str(value), **part}
    if isinstance(value, LoopSource):
        return value.to_spec()
    if isinstance(value, (dict, list, tuple)):
        from hpcflow.spec import SpecBuilder, _needs_resolving

        if _needs_resolving(value):  # if_expression(_then={"n": p, ...}): resolved inside
            return SpecBuilder().value_spec(value, "a value with references in it")
    return {"value": values.to_jsonable(value)}


class LoopSource:
    """Something a loop iterates over, evaluated by the planner."""

    def __init__(self, kind: str, **args: Any) -> None:
        self.kind = kind
        self.args = args

    def to_spec(self) -> dict:
        return {"kind": self.kind, **{k: _arg(v) for k, v in self.args.items() if v is not None}}

    def __repr__(self) -> str:
        return f"<{self.kind} {self.args}>"


def argo_range(*args: Any) -> LoopSource:
    """``range(*args)`` evaluated at run time; arguments may be references."""
    if not 1 <= len(args) <= 3:
        raise TypeError("argo_range takes 1 to 3 arguments, like range()")
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1],
                                                               args[2] if len(args) == 3 else 1)
    return LoopSource("range", start=start, end=end, step=step)


def argo_sequence(count: Any = None, start: Any = None, end: Any = None,
                  format: str | None = None) -> LoopSource:
    """Argo's ``withSequence``: ``count`` or ``end``, from ``start`` (0), with a printf format."""
    return LoopSource("sequence", count=count, start=start, end=end, format=format)


def argo_len(param: Any) -> LoopSource:
    """The length of a list parameter, at run time."""
    return LoopSource("len", of=param)


def argo_sum(param: Any) -> LoopSource:
    """The sum of a list parameter of numbers, at run time (``argo_range(argo_sum(p))``)."""
    return LoopSource("sum", of=param)


def argo_concat(param: Any) -> LoopSource:
    """A list of lists as one list, at run time (``argo_len(argo_concat(p))``)."""
    return LoopSource("concat", of=param)


def argo_enumerate(*args: Any, **kwargs: Any) -> LoopSource:
    """Loop items ``{"order": i, "value": v[i]}`` over a list (with several lists,
    ``value0``, ``value1``, ...; or the names given as keywords), for ``with_param``."""
    named = dict(kwargs)
    if len(args) == 1:
        named["value"] = args[0]
    else:
        named.update({f"value{i}": arg for i, arg in enumerate(args)})
    if not named:
        raise TypeError("argo_enumerate takes at least one list")
    return LoopSource("enumerate", **named)


def if_expression(_if: Any, _then: Any, _else: Any) -> Condition:
    """A conditional value for Steps/DAG outputs (``value_from_expression``).

    ``_if`` is a condition's text, a comparison of references (``p == True``, ``p < 5``),
    or a parameter, which, as in dflow, means ``p == true``. A constant (``True``, or the
    ``False`` that comparing two non-references gives) is refused: it would pick one branch
    whatever the workflow computes."""
    if isinstance(_if, (InputParameter, OutputParameter, StepParameterRef)):
        _if = _if == True  # noqa: E712 (builds the condition text)
    elif not isinstance(_if, (str, Reference)):
        raise WorkflowDefinitionError(
            f"if_expression(_if={values.short_repr(_if)}): the condition is a constant "
            f"{type(_if).__name__}, not something evaluated at run time: compare references "
            "(p == True, p < 5) or give the condition's text")
    return Condition(str(_if), then=_then, otherwise=_else)


class Condition(LoopSource):
    """``if_expression``: the condition is kept as its text, the branches as value specs."""

    def __init__(self, cond: str, then: Any, otherwise: Any) -> None:
        super().__init__("if", then=then, otherwise=otherwise)
        self.cond = cond

    def to_spec(self) -> dict:
        return {**super().to_spec(), "cond": self.cond}
