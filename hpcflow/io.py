"""Inputs and outputs of templates, and the references that connect steps.

A reference renders as an Argo template string, as in dflow, so that
``"%s < %s" % (p1, p2)`` and ``"iter-%s" % p`` build expressions; the planner
resolves them at run time inside the enclosing Steps/DAG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpcflow.names import check_io_name

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
        return f"<{type(self).__name__} {self}>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    # ``p1 < p2`` builds the condition text, as dflow's references do (== stays identity:
    # write "%s == %s" % (a, b) for an equality condition).
    def __lt__(self, other: Any) -> Expression:
        return Expression(f"{self} < {_operand(other)}")

    def __le__(self, other: Any) -> Expression:
        return Expression(f"{self} <= {_operand(other)}")

    def __gt__(self, other: Any) -> Expression:
        return Expression(f"{self} > {_operand(other)}")

    def __ge__(self, other: Any) -> Expression:
        return Expression(f"{self} >= {_operand(other)}")


class Expression(str):
    """A condition or value in text, e.g. ``"{{steps.a.outputs.parameters.n}} < 5"``."""


def _operand(value: Any) -> str:
    if isinstance(value, str) and not isinstance(value, (Reference, Expression)):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


class InputParameter(Reference):
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
    def has_value(self) -> bool:
        return self.value is not _UNSET

    def expr(self) -> str:
        return f"inputs.parameters.{self.name}"


class InputArtifact(Reference):
    """An input artifact of a template; ``path`` is where script templates find it."""

    def __init__(self, path: str | None = None, name: str | None = None, optional: bool = False,
                 type: Any = None, archive: str | None = "default", sub_path: str | None = None,
                 **kwargs: Any) -> None:
        self.path = path
        self.name = name
        self.optional = optional
        self.type = type
        self.archive = archive
        self.sub_path = sub_path

    def expr(self) -> str:
        return f"inputs.artifacts.{self.name}"


class OutputParameter(Reference):
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

    @property
    def has_default(self) -> bool:
        return self.default is not _UNSET

    def expr(self) -> str:
        return f"outputs.parameters.{self.name}"


class OutputArtifact(Reference):
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
        """dflow keeps the artifact in a Kubernetes volume claim: refused."""
        from hpcflow.errors import WorkflowDefinitionError

        raise WorkflowDefinitionError(
            f"output artifact {self.name!r}: .pvc() saves it in a Kubernetes volume claim, and "
            "hpcflow runs no Kubernetes: its artifacts already go to the configured storage")

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


class StepParameterRef(_StepRef):
    """``step.outputs.parameters["x"]``: ``{{steps.NAME.outputs.parameters.x}}``."""

    kind = "parameters"


class StepArtifactRef(_StepRef):
    """``step.outputs.artifacts["x"]``: ``{{steps.NAME.outputs.artifacts.x}}``."""

    kind = "artifacts"


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
