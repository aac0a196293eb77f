"""Inputs and outputs of templates, and the references that connect steps.

A reference renders as an Argo template string, as in dflow, so that
``"%s < %s" % (p1, p2)`` and ``"iter-%s" % p`` build expressions; the planner
resolves them at run time inside the enclosing Steps/DAG.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from hpcflow.artifact_part import ArtifactPart
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.names import check_io_name
from hpcflow.values import short_repr

if TYPE_CHECKING:
    from hpcflow.step import Step

_UNSET: Any = object()


class Reference:
    """Anything that renders as ``{{...}}`` and is resolved by the planner."""

    step: Step | None = None

    def expr(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return "{{" + self.expr() + "}}"

    def __repr__(self) -> str:
        return str(self)  # as dflow's: "%r" % p is the same text as "%s" % p

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


#: dflow's name for the base of its references (``isinstance(x, ArgoVar)`` in dflow code).
ArgoVar = Reference


def __getattr__(name: str) -> Any:
    """``from dflow.io import IfExpression, if_expression``: defined in hpcflow.expressions
    (which imports this module), served from here on first use."""
    if name in ("IfExpression", "if_expression"):
        from hpcflow import expressions

        return expressions.Condition if name == "IfExpression" else expressions.if_expression
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ParameterOps(Reference):
    """dflow's ``ArgoVar`` operators on parameter references: ``p["key"]``, ``p[0]``,
    ``p == x``, ``p < x``, ``p + 1``... each builds something the planner evaluates at run
    time; an operand it could never evaluate is refused here, in one line."""

    def __getitem__(self, key: Any) -> Subscript:
        return Subscript(self, key)

    def __iter__(self) -> Any:
        # __getitem__ would make Python iterate it forever: refuse as dflow does
        raise TypeError(f"{self} is a reference to a value known at run time: it cannot be "
                        "iterated while the workflow is built (loop over it with with_param=)")

    def __eq__(self, other: Any) -> Expression:  # type: ignore[override]
        return _binary(self, "==", other)

    def __ne__(self, other: Any) -> Expression:  # type: ignore[override]
        return _binary(self, "!=", other)

    __hash__ = object.__hash__  # still a dict key and a set member, by identity

    def __lt__(self, other: Any) -> Expression:
        return _binary(self, "<", other)

    def __le__(self, other: Any) -> Expression:
        return _binary(self, "<=", other)

    def __gt__(self, other: Any) -> Expression:
        return _binary(self, ">", other)

    def __ge__(self, other: Any) -> Expression:
        return _binary(self, ">=", other)

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return str(self) + other  # dflow: text, e.g. p + "-suffix"
        return _binary(self, "+", other)

    def __sub__(self, other: Any) -> Expression:
        return _binary(self, "-", other)

    def __mul__(self, other: Any) -> Expression:
        return _binary(self, "*", other)

    def __truediv__(self, other: Any) -> Expression:
        return _binary(self, "/", other)


class Expression(_ParameterOps):
    """A condition or computed value in hpcflow's expression syntax (see
    ``hpcflow.daemon.conditions``), e.g. ``{{steps.a.outputs.parameters.n}} < 5``: the text
    of a ``when=``, of ``if_expression(_if=...)``, and, given as a parameter value, the
    value it computes (``p + 1`` is 4 when ``p`` is 3; ``p < 5`` is ``True``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def expr(self) -> str:
        return self.text


class Subscript(_ParameterOps):
    """``p["key"]`` / ``p[0]``: a field of a dict or list parameter (dflow's ``jsonpath``);
    renders as ``{{inputs.parameters.p['key'][0]}}``."""

    def __init__(self, base: _ParameterOps, key: Any) -> None:
        if isinstance(base, Expression):
            raise WorkflowDefinitionError(
                f"({base})[{key!r}]: a computed value cannot be subscripted; subscript the "
                "parameter itself")
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise WorkflowDefinitionError(
                f"{base}[{short_repr(key)}]: a parameter reference takes a str key or an int "
                "index")
        if isinstance(key, str) and any(c in key for c in "{}'\\"):
            raise WorkflowDefinitionError(
                f"{base}[{key!r}]: a key used in a reference cannot hold braces, quotes or "
                "backslashes")
        self.base = base
        self.key = key
        self.step = base.step

    def expr(self) -> str:
        index = f"'{self.key}'" if isinstance(self.key, str) else str(self.key)
        return f"{self.base.expr()}[{index}]"


def _operand(value: Any, op: str, left: Any) -> str:
    """``value`` as a term of an expression; a value no expression could use is refused."""
    if isinstance(value, Expression):
        return f"({value})"
    if isinstance(value, Reference):
        if not isinstance(value, _ParameterOps):
            raise WorkflowDefinitionError(
                f"{left} {op} {value}: an artifact is not a value: compare or compute with "
                "parameters")
        return str(value)
    if isinstance(value, bool) and op in ("==", "!="):
        return "true" if value else "false"
    if value is None and op in ("==", "!="):
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
            and value not in (float("inf"), float("-inf")):
        return repr(value)
    if isinstance(value, str) and op not in ("+", "-", "*", "/"):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    kinds = ("a number or another parameter" if op in ("+", "-", "*", "/")
             else "a number, a string, a bool, None or another parameter")
    raise WorkflowDefinitionError(
        f"{left} {op} {short_repr(value)}: hpcflow cannot evaluate this at run time: use "
        f"{kinds} (not {type(value).__name__})")


def _binary(left: _ParameterOps, op: str, right: Any) -> Expression:
    text = f"({left})" if isinstance(left, Expression) else str(left)
    return Expression(f"{text} {op} {_operand(right, op, left)}")


class InputParameter(_ParameterOps):
    """An input parameter of a template.

    Inside a Steps/DAG it renders as ``{{inputs.parameters.N}}``.
    """

    def __init__(self, value: Any = _UNSET, type: Any = None, description: str | None = None,
                 name: str | None = None, save_as_artifact: bool = False,
                 **kwargs: Any) -> None:
        self.value = value
        self.type = type
        self.description = description
        self.name = name
        #: dflow's mark of a big value (``BigParameter``): no size warning for it.
        self.save_as_artifact = save_as_artifact

    @property
    def value(self) -> Any:
        """The default value; without one there is no attribute (``hasattr(p, "value")`` is
        False), as in dflow."""
        if self._value is _UNSET:
            raise AttributeError(f"input parameter {self.name!r} has no value")
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value

    @property
    def has_value(self) -> bool:
        return self._value is not _UNSET

    def expr(self) -> str:
        return f"inputs.parameters.{self.name}"


class InputArtifact(ArtifactPart, Reference):
    """An input artifact of a template; ``path`` is where script templates find it.
    ``art[0]``/``art.sub_path(p)`` inside a Steps/DAG name a part of it (dflow's);
    ``sub_path=`` given here is kept as ``sp``, as dflow keeps it."""

    def __init__(self, path: str | None = None, name: str | None = None, optional: bool = False,
                 type: Any = None, archive: str | None = "default", sub_path: str | None = None,
                 **kwargs: Any) -> None:
        self.path = path
        self.name = name
        self.optional = optional
        self.type = type
        self.archive = archive
        self.sp = sub_path

    def expr(self) -> str:
        return f"inputs.artifacts.{self.name}"


class OutputParameter(_ParameterOps):
    """An output parameter: of a script (``value_from_path``) or of a Steps/DAG
    (``value_from_parameter``)."""

    def __init__(self, value_from_path: str | None = None, value_from_parameter: Any = None,
                 name: str | None = None, type: Any = None, default: Any = _UNSET,
                 value_from_expression: Any = None, value: Any = _UNSET,
                 global_name: str | None = None, save_as_artifact: bool = False,
                 **kwargs: Any) -> None:
        #: dflow's mark of a big value (``BigParameter``): always stored by digest, no size
        #: warning for it.
        self.save_as_artifact = save_as_artifact
        self.value_from_path = value_from_path
        self.value_from_parameter = value_from_parameter
        self.value_from_expression = value_from_expression
        self.name = name
        self.type = type
        self.default = default
        self.value = value
        self.global_name = global_name

    # dflow sets ``default`` and ``value`` only when given: ``hasattr(out, "default")``
    @property
    def default(self) -> Any:
        if self._default is _UNSET:
            raise AttributeError(f"output parameter {self.name!r} has no default")
        return self._default

    @default.setter
    def default(self, value: Any) -> None:
        self._default = value

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            raise AttributeError(f"output parameter {self.name!r} has no value")
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value = value

    @property
    def has_default(self) -> bool:
        return self._default is not _UNSET

    def expr(self) -> str:
        return f"outputs.parameters.{self.name}"


class OutputArtifact(ArtifactPart, Reference):
    """An output artifact; of a script (``path``) or of a Steps/DAG (``_from``)."""

    def __init__(self, path: str | None = None, _from: Any = None, name: str | None = None,
                 type: Any = None, archive: str | None = "default", from_expression: Any = None,
                 global_name: str | None = None, **kwargs: Any) -> None:
        self.path = path
        self._from = _from
        self.from_expression = from_expression
        self.name = name
        self.type = type
        self.archive = archive
        self.global_name = global_name

    def pvc(self, size: str = "1Gi", storage_class: str | None = None,
            access_modes: list[str] | None = None) -> Any:
        """dflow saves the artifact of every step of the template in a volume: refused here,
        where a step's own output shares it (``StepArtifactRef.pvc``)."""
        from hpcflow.errors import WorkflowDefinitionError

        raise WorkflowDefinitionError(
            f"output artifact {self.name!r}: .pvc() on a template's output is not supported: "
            f"call it on a step's, step.outputs.artifacts[{self.name!r}].pvc()")

    def expr(self) -> str:
        return f"outputs.artifacts.{self.name}"


class _NamedDict(dict):
    """A dict that names and validates its entries (``templ.inputs.parameters["x"] = ...``)."""

    kind = "parameter"

    def __setitem__(self, key: str, value: Any) -> None:
        check_io_name(key, self.kind)
        if hasattr(value, "name"):
            value.name = key
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class _ParameterDict(_NamedDict):
    kind = "parameter"


class _ArtifactDict(_NamedDict):
    kind = "artifact"


class IOGroup:
    """``inputs`` or ``outputs`` of a template: ``.parameters`` and ``.artifacts``."""

    def __init__(self, parameters: dict | None = None, artifacts: dict | None = None) -> None:
        self._parameters = _ParameterDict()
        self._artifacts = _ArtifactDict()
        self.parameters = parameters or {}
        self.artifacts = artifacts or {}

    @property
    def parameters(self) -> _ParameterDict:
        return self._parameters

    @parameters.setter
    def parameters(self, value: dict) -> None:
        self._parameters = _ParameterDict()
        self._parameters.update(value)

    @property
    def artifacts(self) -> _ArtifactDict:
        return self._artifacts

    @artifacts.setter
    def artifacts(self, value: dict) -> None:
        self._artifacts = _ArtifactDict()
        self._artifacts.update(value)


class Inputs(IOGroup):
    pass


class Outputs(IOGroup):
    pass


class PVC:
    """dflow's persistent volume claim: here a directory of the workflow's that its steps
    share on the machine that runs them (``StepArtifactRef.pvc``, ``daemon/volumes.py``);
    ``size``, ``storage_class`` and ``access_modes`` are Kubernetes' and kept unused.
    Also accepted as ``SlurmRemoteExecutor(pvc=)``, where it is not needed."""

    def __init__(self, name: str, subpath: str, size: str = "1Gi",
                 storage_class: str | None = None,
                 access_modes: list[str] | None = None) -> None:
        self.name, self.subpath, self.size = name, subpath, size
        self.storage_class = storage_class
        self.access_modes = access_modes or ["ReadWriteOnce"]
        #: The step whose output ``.pvc()`` made this from (None: made by hand).
        self.step: Step | None = None

    def __repr__(self) -> str:
        return f"PVC({self.name!r}, {self.subpath!r})"


class _StepRef(Reference):
    """A step's input or output: ``{{steps.NAME.outputs.KIND.x}}`` (``tasks.`` in a DAG)."""

    kind = ""
    step: Step

    def __init__(self, step: Step, io: str, name: str) -> None:
        self.step = step
        self.io = io
        self.name = name

    def expr(self) -> str:
        return f"{self.step.prefix}.{self.step.name}.{self.io}.{self.kind}.{self.name}"


class StepParameterRef(_StepRef, _ParameterOps):
    """``step.outputs.parameters["x"]``: ``{{steps.NAME.outputs.parameters.x}}``."""

    kind = "parameters"

    @property
    def value(self) -> Any:
        """``step.inputs.parameters["x"].value``: what the step was given (else the
        template's default), as dflow's step inputs hold it; outputs have a value once the
        step ran (``wf.query_step(...)``), not here."""
        if self.io == "inputs":
            if self.name in self.step.parameters:
                return self.step.parameters[self.name]
            declared = self.step.template.inputs.parameters.get(self.name)
            if isinstance(declared, InputParameter) and declared.has_value:
                return declared.value
        raise AttributeError(f"{self} has no value while the workflow is built"
                             + ("" if self.io == "inputs" else
                                ": read it from wf.query_step(...) once the step ran"))


class StepArtifactRef(ArtifactPart, _StepRef):
    """``step.outputs.artifacts["x"]``: ``{{steps.NAME.outputs.artifacts.x}}``; ``[0]`` and
    ``.sub_path(p)`` give a part of it (``hpcflow.artifact_part``)."""

    kind = "artifacts"

    def pvc(self, size: str = "1Gi", storage_class: str | None = None,
            access_modes: list[str] | None = None) -> Any:
        """dflow's shared volume: when the step's script ends, its output is copied into a
        volume that a step running beside it reads while it waits (dflow's ``.pvc()``, its
        "async" example). The volume is a directory of the workflow's next to its step
        directories (``volumes/public/``); the step given it as an input artifact does not
        wait for this step (``daemon/volumes.py``)."""
        if self.io != "outputs":
            raise WorkflowDefinitionError(
                f"{self}: .pvc() shares a step's output artifact; this is an input")
        claim = PVC("public", f"{self.step.name}-{self.name}-{secrets.token_hex(4)}", size,
                    storage_class, access_modes)
        claim.step = self.step  # the writer: its readers must run on its machine
        self.step.volume_saves.append((self.name, claim))
        return claim


class _RefDict(dict):
    """Creates references on access, so ``step.outputs.parameters["y"]`` always works."""

    def __init__(self, step: Step, io: str, kind: str, names: list[str]) -> None:
        super().__init__()
        self._step = step
        self._io = io
        self._kind = kind
        for name in names:
            super().__setitem__(name, self._make(name))

    def _make(self, name: str) -> Reference:
        if self._kind == "parameters":
            return StepParameterRef(self._step, self._io, name)
        return StepArtifactRef(self._step, self._io, name)

    def __missing__(self, name: str) -> Reference:
        ref = self._make(name)
        super().__setitem__(name, ref)
        return ref


class StepIO:
    """``step.inputs`` / ``step.outputs``: references to the step's parameters and artifacts."""

    def __init__(self, step: Step, io: str, parameter_names: list[str],
                 artifact_names: list[str]) -> None:
        self.parameters = _RefDict(step, io, "parameters", parameter_names)
        self.artifacts = _RefDict(step, io, "artifacts", artifact_names)
