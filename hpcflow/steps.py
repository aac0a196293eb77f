"""``Steps`` and ``DAG``: templates made of other steps (sub-workflows)."""

from __future__ import annotations

from typing import Any

from hpcflow import context_syntax
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import Inputs, Outputs
from hpcflow.step import Step, Task
from hpcflow.templates import OPTemplate


class Steps(OPTemplate):
    """Groups of steps: inner lists run in parallel, outer list in sequence."""

    kind = "steps"

    def __init__(self, name: str | None = None, inputs: Inputs | None = None,
                 outputs: Outputs | None = None, steps: list | None = None,
                 memoize_key: str | None = None, parallelism: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name=name, inputs=inputs, outputs=outputs, **kwargs)
        self.steps: list[list[Step]] = []
        self.parallelism = parallelism
        for item in steps or []:
            self.add(item)

    def add(self, step: Step | list[Step]) -> None:
        group = list(step) if isinstance(step, (list, tuple)) else [step]
        for s in group:
            if not isinstance(s, Step):
                raise WorkflowDefinitionError(
                    f"Steps {self.name!r}: can only add Step objects, got {s!r}"
                )
        self.steps.append(group)

    def all_steps(self) -> list[Step]:
        return [s for group in self.steps for s in group]

    def __enter__(self) -> Steps:
        """``with Steps(...) as s:`` steps created in the block are added to ``s``."""
        context_syntax.enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        context_syntax.leave(self)


class DAG(OPTemplate):
    """Tasks whose order comes from their input/output references and ``dependencies``."""

    kind = "dag"

    def __init__(self, name: str | None = None, inputs: Inputs | None = None,
                 outputs: Outputs | None = None, tasks: list[Task] | None = None,
                 parallelism: int | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, inputs=inputs, outputs=outputs, **kwargs)
        self.tasks: list[Task] = []
        self.parallelism = parallelism
        for task in tasks or []:
            self.add(task)

    def add(self, task: Task | list[Task]) -> None:
        for t in task if isinstance(task, (list, tuple)) else [task]:
            if not isinstance(t, Step):
                raise WorkflowDefinitionError(
                    f"DAG {self.name!r}: can only add Task objects, got {t!r}")
            self.tasks.append(t)

    def all_steps(self) -> list[Step]:
        return list(self.tasks)

    def __enter__(self) -> DAG:
        """``with DAG(...) as d:`` tasks created in the block are added to ``d``."""
        context_syntax.enter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        context_syntax.leave(self)
