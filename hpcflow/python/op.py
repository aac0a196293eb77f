"""Python OPs: class OPs with signs and ``execute``, and function OPs from annotations."""

from __future__ import annotations

import functools
import inspect
from abc import ABCMeta
from collections.abc import Callable, MutableMapping
from typing import Any, get_args, get_origin

from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python.hdf5 import accepts_hdf5
from hpcflow.python.signs import OPIO, Artifact, OPIOSign, Parameter
from hpcflow.python.typecheck import describe, matches, path_like, type_name


class TransientError(Exception):
    """Raised by an OP for a failure worth retrying (``retry_on_transient_error``)."""


class FatalError(Exception):
    """Raised by an OP for a failure that must not be retried."""


class OPSignError(TypeError):
    """An OP received or returned a value that its sign does not allow."""


def check_opio(op_name: str, direction: str, sign: OPIOSign | dict,
               values: MutableMapping[str, Any]) -> None:
    """Check ``values`` against ``sign``; raise ``OPSignError`` naming OP, field and types.

    As dflow's ``exec_sign_check``, ``values`` is completed in place: a missing optional
    artifact is ``None``, a missing parameter (input or output) with a default takes it;
    ``None`` is not type-checked."""
    for name, spec in dict(sign).items():
        if name not in values:
            if isinstance(spec, Artifact) and spec.optional:
                values[name] = None
                continue
            if isinstance(spec, Parameter) and spec.has_default:
                values[name] = spec.default
                continue
            raise OPSignError(f"OP {op_name!r} {direction} {name!r} is missing")
        value = values[name]
        if value is None:
            continue
        if isinstance(spec, Artifact):
            if accepts_hdf5(spec.type):
                continue  # dflow checks no sign that accepts HDF5Datasets
            if not _artifact_value_ok(spec, value):
                raise OPSignError(
                    f"OP {op_name!r} {direction} artifact {name!r}: expected "
                    f"{type_name(spec.type)}, got {describe(value)}"
                )
            continue
        type_ = spec.type if isinstance(spec, Parameter) else spec
        if not matches(value, type_):
            raise OPSignError(
                f"OP {op_name!r} {direction} {name!r}: expected {type_name(type_)}, "
                f"got {describe(value)}"
            )


def _refuse_undeclared(op_name: str, direction: str, sign: OPIOSign | dict,
                       values: MutableMapping[str, Any]) -> None:
    """``@OP.exec_sign_check`` refuses names the sign does not declare, as dflow's does."""
    extra = [k for k in values if k not in sign]
    if extra:
        raise OPSignError(f"OP {op_name!r} {direction} {extra[0]!r} is not declared in its "
                          f"{direction} sign (it declares: {', '.join(sign) or 'nothing'})")


def _artifact_value_ok(spec: Artifact, value: Any) -> bool:
    if spec.kind == "path":
        return path_like(value)
    if spec.kind in ("list", "set"):
        return isinstance(value, (list, set, frozenset)) and all(
            path_like(v) or v is None for v in value)
    if spec.kind == "dict":
        return isinstance(value, dict) and all(path_like(v) or v is None
                                               for v in value.values())
    return _nested_paths(value)


def _nested_paths(value: Any) -> bool:
    """NestedDict: dicts or lists of paths, at any depth (dflow does not check these)."""
    if isinstance(value, dict):
        return all(_nested_paths(v) for v in value.values())
    if isinstance(value, list):
        return all(_nested_paths(v) for v in value)
    return value is None or path_like(value)


class _OPMeta(ABCMeta):
    """``isinstance(f, OP)`` holds for an ``@OP.function`` ``f``, as in dflow, where ``f`` is
    an instance of its OP; here it is the OP class (so ``PythonOPTemplate(f)``, ``f()`` and
    pickling by reference work as before). Derived from ``ABCMeta``: dflow's ``OP`` is an
    ``ABC``, so ``class MyOP(OP, ABC)`` must have no metaclass conflict."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if isinstance(obj, type) and hasattr(obj, "_hpcflow_function"):
            return issubclass(obj, cls)
        return super().__instancecheck__(obj)


class OP(metaclass=_OPMeta):
    """Base of class OPs: define ``get_input_sign``, ``get_output_sign`` and ``execute``."""

    progress_total: int = 1
    progress_current: int = 0
    #: As dflow sets them before ``execute``: the step's key (``None`` without one) and the
    #: workflow's id (Argo's ``{{workflow.name}}``).
    key: str | None = None
    workflow_name: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign()

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign()

    def execute(self, op_in: OPIO) -> OPIO:
        raise NotImplementedError(f"OP {type(self).__name__} does not implement execute()")

    @classmethod
    def get_opio_info(cls, opio_sign: OPIOSign | dict | None = None) -> dict:
        """dflow's: ``opio_sign``'s entries, a plain type as its name (``Artifact`` and
        ``Parameter`` signs as they are); without a sign, both of this OP's, by direction."""
        if opio_sign is None:
            return {"inputs": dict(cls.get_input_sign()),
                    "outputs": dict(cls.get_output_sign())}
        return {k: v if isinstance(v, (Artifact, Parameter)) else type_name(v)
                for k, v in dict(opio_sign).items()}

    @classmethod
    def get_info(cls) -> dict:
        """dflow's: the OP's ``module.Name``, its signs as text, and the source of its
        function (``@OP.function``) or ``execute``."""
        from hpcflow.graph import source_lines

        func = getattr(cls, "_hpcflow_function", None)
        return {"name": f"{cls.__module__}.{cls.__name__}",
                "inputs": {k: str(v) for k, v in cls.get_opio_info(cls.get_input_sign()).items()},
                "outputs": {k: str(v) for k, v in
                            cls.get_opio_info(cls.get_output_sign()).items()},
                "execute": "".join(source_lines(func if func is not None else cls.execute))}

    @classmethod
    def convert_to_graph(cls) -> dict:
        """dflow's graph of the OP: ``module``, ``name``, signs, and ``source`` (the OP's
        file up to its end), from which ``OP.from_graph`` makes it again."""
        from hpcflow.graph import op_graph

        return op_graph(cls)

    @staticmethod
    def from_graph(graph: dict) -> Any:
        """The OP a graph names: imported from its module, or, for an OP of ``__main__``,
        made by running the ``source`` the graph holds. A graph is code: read only graphs
        you made or trust, as you would a script."""
        from hpcflow.graph import op_from_graph

        return op_from_graph(graph)

    #: Set by the runner before ``execute``: the storage keys of the step's input artifacts
    #: and of the outputs it will store (``{"inputs": {...}, "outputs": {...}}``).
    artifact_keys: dict[str, dict[str, str | None]] | None = None

    def _artifact_key(self, io: str, name: str) -> str:
        keys = self.artifact_keys
        if keys is None:
            raise RuntimeError(f"{type(self).__name__}: artifact storage keys are known only "
                               "while the OP runs as a step of a workflow")
        if name not in keys[io]:
            raise KeyError(f"{type(self).__name__} has no {io[:-1]} artifact {name!r} "
                           f"(it has: {', '.join(keys[io]) or 'none'})")
        key = keys[io][name]
        if key is None:
            raise RuntimeError(f"{io[:-1]} artifact {name!r} of {type(self).__name__} has no "
                               "single storage key (it was not given, or it is made of several "
                               "stored parts, as a loop's outputs are)")
        return key

    def get_input_artifact_storage_key(self, name: str) -> str:
        """The key of input artifact ``name`` in the storage the step reads it from."""
        return self._artifact_key("inputs", name)

    def get_output_artifact_storage_key(self, name: str) -> str:
        """The key output artifact ``name`` gets in storage when the step ends (``.tgz`` when
        archived), as dflow's names the object Argo will save."""
        return self._artifact_key("outputs", name)

    def get_input_artifact_link(self, name: str) -> str:
        raise NotImplementedError("get_input_artifact_link: hpcflow has no S3 console to link "
                                  "to; use get_input_artifact_storage_key")

    def get_output_artifact_link(self, name: str) -> str:
        raise NotImplementedError("get_output_artifact_link: hpcflow has no S3 console to "
                                  "link to; use get_output_artifact_storage_key")

    def register_output_artifact(self, name: str, namespace: str, dataset_name: str,
                                 **kwargs: Any) -> None:
        """dflow registers it with its lineage client; hpcflow has none: a warning, as dflow
        gives without a lineage client."""
        import logging

        logging.warning("register_output_artifact(%r): no lineage client in hpcflow; "
                        "nothing registered", name)

    @staticmethod
    def exec_sign_check(func: Callable[[Any, OPIO], OPIO]) -> Callable[[Any, OPIO], OPIO]:
        """Decorate ``execute`` so its input and output are checked against the signs."""

        @functools.wraps(func)
        def checked(self: OP, op_in: OPIO) -> OPIO:
            name = type(self).__name__
            check_opio(name, "input", self.get_input_sign(), op_in)
            _refuse_undeclared(name, "input", self.get_input_sign(), op_in)
            op_out = func(self, op_in)
            if not isinstance(op_out, (OPIO, dict)):
                raise OPSignError(f"OP {name!r} returned {describe(op_out)}, expected OPIO")
            check_opio(name, "output", self.get_output_sign(), op_out)
            _refuse_undeclared(name, "output", self.get_output_sign(), op_out)
            return op_out

        checked.__hpcflow_checked__ = True  # type: ignore[attr-defined]
        return checked

    @staticmethod
    def function(func: Callable | None = None, **op_kwargs: Any) -> Any:
        """Make an OP class from a function whose annotations are its signs.

        ``@OP.function def f(x: int, a: Artifact(Path)) -> {"y": int}: ...``
        """
        if func is None:
            return lambda f: OP.function(f, **op_kwargs)
        return make_function_op(func, op_kwargs)

    @staticmethod
    def superfunction(func: Callable | None = None, **dag_kwargs: Any) -> Any:
        """Make a ``DAG`` template from a function whose body calls ``@OP.function`` OPs
        (or other superfunctions) on its arguments: ``hpcflow.python.superfunction``."""
        if func is None:
            return lambda f: OP.superfunction(f, **dag_kwargs)
        from hpcflow.python.superfunction import make_superfunction

        return make_superfunction(func, dag_kwargs)


def _annotations(func: Callable) -> dict[str, Any]:
    """The function's annotations, evaluated where they are strings (``from __future__ import
    annotations``), in the function's own module, as Python would have without that import."""
    result = {}
    for name, ann in dict(getattr(func, "__annotations__", {})).items():
        if isinstance(ann, str):
            try:
                # Evaluates the author's own annotation text, in the author's module.
                ann = eval(ann, getattr(func, "__globals__", {}))
            except Exception as exc:
                raise WorkflowDefinitionError(
                    f"function OP {func.__name__!r}: cannot evaluate the annotation of "
                    f"{name!r} ({ann!r}): {exc}") from exc
        result[name] = ann
    return result


def _call_function_op(cls: type[OP], *args: Any, **kwargs: Any) -> Any:
    """``f(...)`` of an ``@OP.function`` OP, as in dflow: inside ``with Workflow/DAG/Steps``
    it adds a Task running ``f`` and returns its outputs (references for later calls);
    elsewhere, given arguments, it runs ``f`` here and returns its OPIO; ``f()`` with no
    arguments outside a block is an instance of the OP (``PythonOPTemplate(f())``)."""
    from hpcflow import context_syntax

    if not context_syntax.in_context() and not args and not kwargs:
        return object.__new__(cls)
    names = list(cls.get_input_sign())
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__}() takes {len(names)} arguments, got {len(args)}")
    for name, value in zip(names, args, strict=False):
        if name in kwargs:
            raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        kwargs[name] = value
    if not context_syntax.in_context():
        return cls().execute(OPIO(kwargs))
    from hpcflow.python.template import PythonOPTemplate
    from hpcflow.step import Task
    from hpcflow.utils import randstr

    sign = cls.get_input_sign()
    base = getattr(cls, "_hpcflow_base", cls)  # the OP itself, not a .use() of it
    task = Task(f"{cls.__name__.lower().replace('_', '-')}-{randstr()}",
                PythonOPTemplate(base, **getattr(cls, "_hpcflow_template_kwargs", {})),
                parameters={k: v for k, v in kwargs.items()
                            if not isinstance(sign.get(k), Artifact)},
                artifacts={k: v for k, v in kwargs.items() if isinstance(sign.get(k), Artifact)},
                **getattr(cls, "_hpcflow_task_kwargs", {}))
    return _as_returned(cls, {**task.outputs.parameters, **task.outputs.artifacts})


#: The output name of a function OP annotated with one type (``-> int``), as in dflow; a
#: ``Tuple[...]`` annotation's items are this name with their position appended.
SINGLE_OUTPUT = "dflow_output"


def _output_form(returned: Any) -> tuple[OPIOSign, Any]:
    """The output sign of a function OP's return annotation, and its form: ``"dict"``
    (``-> {"y": int}``, a ``TypedDict``), a tuple of names (a ``NamedTuple``), ``"single"``
    (``-> int``) or ``"none"``. ``Tuple[int, str]`` is a form of names ``dflow_output_0``..."""
    if returned is None:
        return OPIOSign(), "none"
    if isinstance(returned, dict):
        return OPIOSign(returned), "dict"
    fields = getattr(returned, "__annotations__", None)
    if isinstance(returned, type) and isinstance(fields, dict):
        if issubclass(returned, dict):
            return OPIOSign(fields), "dict"
        if issubclass(returned, tuple):
            return OPIOSign(fields), tuple(fields)
    if get_origin(returned) is tuple and get_args(returned) and Ellipsis not in get_args(returned):
        names = {f"{SINGLE_OUTPUT}_{i}": t for i, t in enumerate(get_args(returned))}
        return OPIOSign(names), tuple(names)
    return OPIOSign({SINGLE_OUTPUT: returned}), "single"


def outputs_by_name(form: Any, result: Any) -> dict:
    """What a function OP returned, as its outputs by name."""
    if form == "single":
        return {SINGLE_OUTPUT: result}
    if isinstance(form, tuple):
        return dict(zip(form, result, strict=False))
    return dict(result) if result is not None else {}


def _as_returned(cls: type[OP], outputs: dict) -> Any:
    """A call's outputs (inside a block: references) in the function's own return form."""
    return in_return_form(getattr(cls, "_hpcflow_output_form", "dict"), outputs)


def in_return_form(form: Any, outputs: dict) -> Any:
    """Outputs by name as the function returns them: one value, a tuple, or the dict."""
    if form == "single":
        return outputs[SINGLE_OUTPUT]
    if isinstance(form, tuple):
        return tuple(outputs[name] for name in form)
    return outputs


def _use(cls: type[OP], **task_kwargs: Any) -> type[OP]:
    """dflow's ``f.use(key=..., executor=...)``: ``f`` whose calls in a block make their
    Task with these arguments."""
    return type(cls.__name__, (cls,), {
        "_hpcflow_task_kwargs": {**getattr(cls, "_hpcflow_task_kwargs", {}), **task_kwargs},
        "_hpcflow_base": getattr(cls, "_hpcflow_base", cls), "__module__": cls.__module__,
        "__qualname__": cls.__qualname__})


def function_signs(func: Callable) -> tuple[OPIOSign, OPIOSign, Any]:
    """The input and output signs a function's annotations and defaults give, and the
    form of what it returns (``_output_form``): shared by ``@OP.function`` and
    ``@OP.superfunction``."""
    signature = inspect.signature(func)
    annotations = _annotations(func)
    input_sign = OPIOSign()
    for name, param in signature.parameters.items():
        type_ = annotations.get(name, Any)
        if param.default is not inspect.Parameter.empty:
            if isinstance(type_, Artifact):
                # as dflow: an artifact argument defaulting to None is optional
                type_.optional = type_.optional or param.default is None
            else:
                type_ = Parameter(type_.type if isinstance(type_, Parameter) else type_,
                                  default=param.default)
        input_sign[name] = type_
    output_sign, form = _output_form(annotations.get("return"))
    return input_sign, output_sign, form


def make_function_op(func: Callable, template_kwargs: dict[str, Any] | None = None
                     ) -> type[OP]:
    input_sign, output_sign, form = function_signs(func)

    def execute(self: OP, op_in: OPIO) -> OPIO:
        return OPIO(outputs_by_name(form, func(**dict(op_in))))

    cls = type(
        func.__name__,
        (OP,),
        {
            "get_input_sign": classmethod(lambda cls: input_sign),
            "get_output_sign": classmethod(lambda cls: output_sign),
            "execute": OP.exec_sign_check(execute),
            "__module__": func.__module__,
            "__doc__": func.__doc__,
            "__qualname__": func.__qualname__,
            "_hpcflow_function": func,
            "func": staticmethod(func),  # dflow's name for the function
            "use": classmethod(_use),
            "_hpcflow_output_form": form,
            # what @OP.function(image=..., ...) gives the template of a Task made by a call
            "_hpcflow_template_kwargs": dict(template_kwargs or {}),
            "__new__": _call_function_op,
        },
    )
    return cls
