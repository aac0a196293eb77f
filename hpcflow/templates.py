"""OP templates: the script templates (shell, Python script) and their common base."""

from __future__ import annotations

import itertools
import re
from typing import Any

from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import Inputs, Outputs
from hpcflow.names import check_template_name

_counter = itertools.count(1)

#: How a script template names its input parameters: ``{{inputs.parameters.NAME}}``.
SCRIPT_PARAMETER = re.compile(r"\{\{\s*inputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")


class OPTemplate:
    """What a step instantiates: a name, declared inputs and outputs, and how to run."""

    kind = "base"

    def __init__(self, name: str | None = None, inputs: Inputs | None = None,
                 outputs: Outputs | None = None, timeout: int | None = None,
                 retry_on_transient_error: int | None = None,
                 timeout_as_transient_error: bool = False, annotations: dict | None = None,
                 labels: dict | None = None, executor: Any = None, **kwargs: Any) -> None:
        given = name
        if isinstance(name, str):
            name = name.lower()  # as dflow: "Hello" is template "hello"
        if name is not None:
            try:
                check_template_name(name)
            except WorkflowDefinitionError as exc:  # the name as the user wrote it
                raise WorkflowDefinitionError(str(exc).replace(repr(name), repr(given), 1)) \
                    from None
        self.name = name or f"{self.kind}-{next(_counter)}"
        self.inputs = inputs or Inputs()
        self.outputs = outputs or Outputs()
        self.timeout = timeout
        self.retry_on_transient_error = retry_on_transient_error
        self.timeout_as_transient_error = timeout_as_transient_error
        self.annotations = annotations or {}
        self.labels = labels or {}
        #: Where steps of this template run unless the step says otherwise.
        self.executor = executor
        self.extra = kwargs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class ScriptOPTemplate(OPTemplate):
    """A template defined by a script run by ``command`` (on the host, or in ``image``)."""

    kind = "script"
    default_command: list[str] = ["sh"]

    def __init__(self, name: str | None = None, inputs: Inputs | None = None,
                 outputs: Outputs | None = None, image: str | None = None,
                 command: str | list[str] | None = None, script: str | None = None,
                 image_pull_policy: str | None = None, envs: dict[str, str] | None = None,
                 requests: dict | None = None, limits: dict | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name, inputs=inputs, outputs=outputs, **kwargs)
        self.image = image
        if isinstance(command, str):
            command = [command]
        self.command = list(command) if command else list(self.default_command)
        self.script = script or ""
        self.image_pull_policy = image_pull_policy
        self.envs = envs or {}
        self.requests = requests or {}
        self.limits = limits or {}


class ShellOPTemplate(ScriptOPTemplate):
    """A shell script step: ``ShellOPTemplate(name=..., image=..., script="echo hi")``."""

    kind = "shell"
    default_command = ["sh"]


class PythonScriptOPTemplate(ScriptOPTemplate):
    """A Python script step: ``PythonScriptOPTemplate(name=..., script="print(1)")``."""

    kind = "pyscript"
    default_command = ["python3"]
