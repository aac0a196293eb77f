"""``Step`` (a use of a template inside Steps) and ``Task`` (inside a DAG)."""

from __future__ import annotations

from typing import Any

from hpcflow import context_syntax
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import StepIO
from hpcflow.names import check_step_name
from hpcflow.templates import OPTemplate


class Step:
    """Instantiates a template with parameter values and artifact sources.

    ``parameters`` values may be constants, references to other steps' outputs
    or to the enclosing template's inputs, or strings with ``{{...}}``.
    """

    prefix = "steps"

    def __init__(self, name: str, template: OPTemplate, parameters: dict[str, Any] | None = None,
                 artifacts: dict[str, Any] | None = None, when: str | None = None,
                 with_param: Any = None, with_sequence: Any = None,
                 continue_on_failed: bool = False, continue_on_error: bool = False,
                 continue_on_num_success: int | None = None,
                 continue_on_success_ratio: float | None = None, key: str | None = None,
                 executor: Any = None, use_resource: Any = None, util_image: str | None = None,
                 util_command: Any = None, parallelism: int | None = None,
                 slices: Any = None, timeout: int | None = None,
                 dependencies: list[Any] | None = None, **kwargs: Any) -> None:
        check_step_name(name)
        if not isinstance(template, OPTemplate):
            raise WorkflowDefinitionError(
                f"step {name!r}: template must be an OP template, Steps or DAG, got {template!r}"
            )
        self.name = name
        self.template = template
        self.parameters: dict[str, Any] = dict(parameters or {})
        self.artifacts: dict[str, Any] = {}
        self.set_artifacts(dict(artifacts or {}))
        self.when = when
        self.with_param = with_param
        self.with_sequence = with_sequence
        self.continue_on_failed = continue_on_failed
        self.continue_on_error = continue_on_error
        self.continue_on_num_success = continue_on_num_success
        self.continue_on_success_ratio = continue_on_success_ratio
        self.key = key
        self.executor = executor
        self.use_resource = use_resource
        if use_resource is not None:
            from hpcflow.slurm import SlurmJob

            if not isinstance(use_resource, SlurmJob):
                raise WorkflowDefinitionError(
                    f"step {name!r}: use_resource= applies a Kubernetes manifest, and hpcflow "
                    "runs no Kubernetes: use SlurmJob(header=...) or an executor")
            self.executor = executor if executor is not None else use_resource
        self.util_image = util_image
        self.util_command = util_command
        self.parallelism = parallelism
        self.slices = slices
        self.timeout = timeout
        self.dependencies: list[Any] = list(dependencies or [])
        #: ``(output artifact, PVC)`` of each ``step.outputs.artifacts[NAME].pvc()``
        self.volume_saves: list[tuple[str, Any]] = []
        self.extra = kwargs
        self.inputs = StepIO(self, "inputs", list(template.inputs.parameters),
                             list(template.inputs.artifacts))
        self.outputs = StepIO(self, "outputs", list(template.outputs.parameters),
                              list(template.outputs.artifacts))
        context_syntax.join(self)  # inside `with Workflow(...)`, `with Steps(...)`, ...

    def set_parameters(self, parameters: dict[str, Any]) -> None:
        self.parameters.update(parameters)

    def set_artifacts(self, artifacts: dict[str, Any]) -> None:
        """As dflow, an artifact given as ``None`` makes the template's input optional (the
        OP receives ``None``)."""
        for name, value in artifacts.items():
            declared = self.template.inputs.artifacts.get(name)
            if value is None and declared is not None and hasattr(declared, "optional"):
                declared.optional = True
        self.artifacts.update(artifacts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} of {self.template.name}>"


class Task(Step):
    """A step of a DAG; dependencies come from references plus ``dependencies=[...]``."""

    prefix = "tasks"


# dflow's ``dflow.step`` names that applications import from it
from hpcflow.expressions import (  # noqa: E402, F401
    argo_concat,
    argo_enumerate,
    argo_len,
    argo_range,
    argo_sequence,
    argo_sum,
    if_expression,
)
