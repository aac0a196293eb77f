"""``PythonOPTemplate``: a template that runs a Python OP, and ``Slices``."""

from __future__ import annotations

import sys
from typing import Any

from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import InputArtifact, InputParameter, OutputArtifact, OutputParameter
from hpcflow.names import to_template_name
from hpcflow.python.op import OP
from hpcflow.python.signs import BigParameter, split_sign
from hpcflow.templates import OPTemplate

#: Local packages made importable in every Python OP step (dflow's ``upload_packages``).
upload_packages: list[str] = []


class Slices:
    """How a looped step slices its inputs and stacks its outputs (dflow's ``Slices``)."""

    def __init__(self, slices: str | None = None, input_parameter: list[str] | None = None,
                 input_artifact: list[str] | None = None,
                 output_parameter: list[str] | None = None,
                 output_artifact: list[str] | None = None, sub_path: bool = False,
                 group_size: int | None = None, shuffle: bool = False, random_seed: int = 0,
                 pool_size: int | None = None, pool_timeout: int | None = None,
                 register_first_only: bool = False, create_dir: bool = False,
                 raise_for_group: bool = False) -> None:
        self.slices = slices or "{{item}}"
        self.input_parameter = list(input_parameter or [])
        self.input_artifact = list(input_artifact or [])
        self.output_parameter = list(output_parameter or [])
        self.output_artifact = list(output_artifact or [])
        self.sub_path = sub_path
        self.group_size = group_size
        #: With ``group_size``: the slices are dealt to the groups in an order shuffled
        #: with ``random_seed`` (the same order on every run).
        self.shuffle = bool(shuffle)
        self.random_seed = random_seed
        self.pool_size = pool_size
        #: With ``group_size``: seconds each slice of a group may run before it fails.
        self.pool_timeout = pool_timeout
        #: With ``continue_on_num_success``/``_ratio``: a group with a failed slice fails
        #: (its other slices still count); without, the group succeeds with ``None`` for them.
        self.raise_for_group = bool(raise_for_group)
        self.register_first_only = register_first_only
        self.create_dir = create_dir

    def to_spec(self) -> dict:
        return dict(vars(self))

    def check(self, where: str) -> None:
        """At submission: what cannot work is refused in one line; what has no effect here,
        as in dflow (the group settings without ``group_size``), is said in one line."""
        if self.pool_size and not self.group_size:
            raise WorkflowDefinitionError(
                f"{where}: Slices(pool_size=) works within a group of slices: set group_size "
                "as well")
        timeout = self.pool_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                    or timeout < 1):
            raise WorkflowDefinitionError(
                f"{where}: Slices(pool_timeout={timeout!r}) must be a whole number of seconds")
        if isinstance(self.random_seed, bool) or not isinstance(self.random_seed, int):
            raise WorkflowDefinitionError(
                f"{where}: Slices(random_seed={self.random_seed!r}) must be an integer")
        unused = [f"{name}=" for name, given in (
            ("shuffle", self.shuffle), ("pool_timeout", timeout is not None),
            ("raise_for_group", self.raise_for_group)) if given]
        if unused and not self.group_size:
            print(f"hpcflow: warning: {where}: Slices({', '.join(unused)}) only acts on groups "
                  "of slices (group_size=): not used here, as in dflow", file=sys.stderr)


def _slices_from_dicts(op_name: str, slices: Slices | None,
                       by_kind: dict[str, dict | None]) -> Slices | None:
    """dflow's ``input_parameter_slices={"x": "{{item}}"}`` (and the artifact and output
    forms), of which ``Slices`` is the short form: one ``Slices`` of the same meaning."""
    given = {kind: dict(names) for kind, names in by_kind.items() if names}
    if not given:
        return slices
    texts = {text for names in given.values() for text in names.values()}
    if slices is not None:
        texts.add(slices.slices)
    if len(texts) != 1:
        raise WorkflowDefinitionError(
            f"PythonOPTemplate({op_name}): the *_slices= arguments and slices= give "
            f"different slice expressions ({', '.join(sorted(map(repr, texts)))}): hpcflow "
            "slices every input and output of a step by one expression; use one")
    result = slices if slices is not None else Slices(texts.pop())
    for kind, names in given.items():
        listed = getattr(result, kind)
        listed += [n for n in names if n not in listed]
    return result


class PythonOPTemplate(OPTemplate):
    """Runs a class OP or function OP; inputs and outputs come from the OP's signs."""

    kind = "python"

    def __init__(self, op_class: Any, image: str | None = None, command: list[str] | None = None,
                 output_artifact_save: Any = None, output_artifact_archive: dict | None = None,
                 output_parameter_default: dict | None = None,
                 input_artifact_slices: dict | None = None,
                 input_parameter_slices: dict | None = None,
                 output_artifact_slices: dict | None = None,
                 output_parameter_slices: dict | None = None,
                 output_artifact_global_name: dict | None = None,
                 output_parameter_global_name: dict | None = None,
                 slices: Slices | None = None, python_packages: list[str] | None = None,
                 timeout: int | None = None, retry_on_transient_error: int | None = None,
                 retry_on_failure: int | None = None, retry_on_error: int | None = None,
                 retry_on_failure_and_error: int | None = None,
                 timeout_as_transient_error: bool = False, image_pull_policy: str | None = None,
                 requests: dict | None = None, limits: dict | None = None,
                 envs: dict[str, str] | None = None, pre_script: str = "", post_script: str = "",
                 name: str | None = None, **kwargs: Any) -> None:
        if isinstance(op_class, type) and issubclass(op_class, OP):
            # first: an @OP.function class is also an ``isinstance(f, OP)``, as in dflow
            op_obj: OP | None = None
            op_type = op_class
        elif isinstance(op_class, OP):
            op_obj = op_class
            op_type = type(op_class)
        else:
            raise WorkflowDefinitionError(
                f"PythonOPTemplate needs an OP class, an OP instance or an @OP.function, "
                f"got {op_class!r}"
            )
        super().__init__(
            name=name or to_template_name(op_type.__name__), timeout=timeout,
            retry_on_transient_error=retry_on_transient_error,
            timeout_as_transient_error=timeout_as_transient_error, **kwargs,
        )
        #: dflow's other retry strategies (Argo's retryPolicy), when there is no
        #: ``retry_on_transient_error``: the phase a failed attempt must have to be retried.
        self.retry_policy: dict | None = None
        if retry_on_transient_error is None:
            for on, limit in (("Failed", retry_on_failure), ("Error", retry_on_error),
                              ("Always", retry_on_failure_and_error)):
                if limit is not None:
                    self.retry_policy = {"on": on, "limit": int(limit)}
                    break
        self.op_class = op_type
        self.op_object = op_obj
        self.image = image
        self.command = command
        self.slices = _slices_from_dicts(op_type.__name__, slices, {
            "input_parameter": input_parameter_slices, "input_artifact": input_artifact_slices,
            "output_parameter": output_parameter_slices,
            "output_artifact": output_artifact_slices})
        self.python_packages = list(python_packages or [])
        self.image_pull_policy = image_pull_policy
        self.requests = requests or {}
        self.limits = limits or {}
        self.envs = envs or {}
        self.pre_script = pre_script
        self.post_script = post_script
        if output_artifact_save:
            raise WorkflowDefinitionError(
                f"PythonOPTemplate({op_type.__name__}): output_artifact_save= is not supported: "
                "hpcflow stores an output artifact once, in the workflow's storage; copy it "
                "elsewhere after the step (copy_artifact, download_artifact)")
        self._declare_io(output_artifact_archive or {}, output_parameter_default or {},
                         output_parameter_global_name or {}, output_artifact_global_name or {})

    def _declare_io(self, archives: dict, defaults: dict, param_globals: dict,
                    art_globals: dict) -> None:
        in_params, in_arts = split_sign(self.op_class.get_input_sign())
        out_params, out_arts = split_sign(self.op_class.get_output_sign())
        for name, sign in in_params.items():
            big = isinstance(sign, BigParameter)
            if sign.has_default:
                self.inputs.parameters[name] = InputParameter(value=sign.default, type=sign.type,
                                                              save_as_artifact=big)
            else:
                self.inputs.parameters[name] = InputParameter(type=sign.type,
                                                              save_as_artifact=big)
        for name, art in in_arts.items():
            self.inputs.artifacts[name] = InputArtifact(optional=art.optional, type=art.type)
        for name, sign in out_params.items():
            out = OutputParameter(type=sign.type,
                                  save_as_artifact=isinstance(sign, BigParameter),
                                  global_name=param_globals.get(name, sign.global_name))
            if name in defaults:
                out.default = defaults[name]
            elif sign.has_default:
                out.default = sign.default
            self.outputs.parameters[name] = out
        for name, art in out_arts.items():
            archive = archives.get(name, art.archive)
            self.outputs.artifacts[name] = OutputArtifact(
                type=art.type, archive=archive,
                global_name=art_globals.get(name, art.global_name))

    def op_instance(self) -> OP:
        return self.op_object if self.op_object is not None else self.op_class()
