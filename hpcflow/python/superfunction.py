"""dflow's ``@OP.superfunction``: a function whose body calls ``@OP.function`` OPs (or other
superfunctions) becomes a ``DAG`` template.

The function runs once, when it is decorated, inside ``with`` the DAG: its arguments are the
DAG's input parameters and artifacts (references), each OP it calls adds a task, and what it
returns (references to those tasks' outputs) become the DAG's outputs. The result is a DAG
(``Step(template=f)`` works) that can also be called inside a ``with Workflow/DAG/Steps``
block, where a call adds a task running the DAG and gives its outputs, in the function's
return form, as an ``@OP.function`` call does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hpcflow import context_syntax
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import InputArtifact, InputParameter, OutputArtifact, OutputParameter
from hpcflow.python.op import function_signs, in_return_form, outputs_by_name
from hpcflow.python.signs import BigParameter, split_sign
from hpcflow.steps import DAG


class SuperFunction(DAG):
    """The DAG an ``@OP.superfunction`` made; calling it in a block adds a task of it."""

    def __init__(self, func: Callable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: The decorated function (dflow's ``.func`` of a function OP).
        self.func = func
        #: The arguments ``use(...)`` gives the tasks its calls make.
        self.task_kwargs: dict[str, Any] = {}
        self._form: Any = "dict"
        self._arg_names: list[str] = []  # the function's arguments, in its order
        self._template: SuperFunction = self  # a ``use()`` copy runs this same DAG

    def use(self, **task_kwargs: Any) -> SuperFunction:
        """``f.use(key=..., executor=...)``: ``f`` whose calls make their task with these
        arguments (the template stays ``f``'s own)."""
        used = copy.copy(self)
        used.task_kwargs = {**self.task_kwargs, **task_kwargs}
        return used

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self.func.__name__
        names = self._arg_names
        if len(args) > len(names):
            raise TypeError(f"{name}() takes {len(names)} arguments, got {len(args)}")
        for arg_name, value in zip(names, args, strict=False):
            if arg_name in kwargs:
                raise TypeError(f"{name}() got multiple values for argument {arg_name!r}")
            kwargs[arg_name] = value
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            raise TypeError(f"{name}() got an unexpected argument {unknown[0]!r}")
        if not context_syntax.in_context():
            raise WorkflowDefinitionError(
                f"superfunction {name!r} was called outside a 'with Workflow(...)', 'with "
                "DAG(...)' or 'with Steps(...)' block: a call adds a task, so make it in one "
                f"(or use {name} as a template: Step(..., template={name}))")
        from hpcflow.step import Task
        from hpcflow.utils import randstr

        template = self._template
        task = Task(f"{template.name}-{randstr()}", template,
                    parameters={k: v for k, v in kwargs.items()
                                if k in template.inputs.parameters},
                    artifacts={k: v for k, v in kwargs.items()
                               if k in template.inputs.artifacts},
                    **self.task_kwargs)
        return in_return_form(self._form,
                              {**task.outputs.parameters, **task.outputs.artifacts})


def make_superfunction(func: Callable, dag_kwargs: dict[str, Any]) -> SuperFunction:
    """The DAG of ``func``: its signs are its annotations, as ``@OP.function``'s."""
    input_sign, output_sign, form = function_signs(func)
    dag = SuperFunction(func, name=func.__name__.lower().replace("_", "-"), **dag_kwargs)
    dag._form = form
    dag._arg_names = list(input_sign)
    params, arts = split_sign(input_sign)
    for pname, sign in params.items():
        big = isinstance(sign, BigParameter)
        dag.inputs.parameters[pname] = (
            InputParameter(value=sign.default, type=sign.type, save_as_artifact=big)
            if sign.has_default else InputParameter(type=sign.type, save_as_artifact=big))
    for aname, art in arts.items():
        dag.inputs.artifacts[aname] = InputArtifact(optional=art.optional, type=art.type)
    with dag:
        returned = func(**{n: dag.inputs.parameters[n] for n in params},
                        **{n: dag.inputs.artifacts[n] for n in arts})
    try:
        outputs = outputs_by_name(form, returned)
    except (TypeError, ValueError) as exc:
        raise WorkflowDefinitionError(
            f"superfunction {func.__name__!r} returned {type(returned).__name__}, not what "
            f"its return annotation says ({exc})") from None
    out_params, out_arts = split_sign(output_sign)
    for oname in [*out_params, *out_arts]:
        if outputs.get(oname) is None:
            raise WorkflowDefinitionError(
                f"superfunction {func.__name__!r} gives no value for its output {oname!r}: "
                "return a step's output (or an input) for it")
    for oname, sign in out_params.items():
        out = OutputParameter(type=sign.type, value_from_parameter=outputs[oname],
                              save_as_artifact=isinstance(sign, BigParameter))
        if sign.has_default:
            out.default = sign.default
        dag.outputs.parameters[oname] = out
    for oname, art in out_arts.items():
        dag.outputs.artifacts[oname] = OutputArtifact(type=art.type, _from=outputs[oname])
    return dag
