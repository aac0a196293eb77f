"""Input/output signs of Python OPs: ``OPIOSign``, ``Artifact``, ``Parameter``, ``BigParameter``."""

from __future__ import annotations

import types
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

from hpcflow.errors import WorkflowDefinitionError

T = TypeVar("T")


class NestedDict(Generic[T]):
    """Marker for artifacts given as nested dicts of paths: ``NestedDict[Path]``."""


_UNSET: Any = object()

ARTIFACT_KINDS = {"path", "list", "set", "dict", "nested"}

#: Appended to a kind whose paths reach the OP as ``str`` (dflow: ``Artifact(str)``,
#: ``Artifact(List[str])``...; ``Path`` only where the sign says ``Path``).
STR_LEAF = ":str"


def _hdf5_marker() -> Any:
    from hpcflow.python.hdf5 import HDF5Datasets

    return HDF5Datasets


def artifact_kind(type_: Any) -> str:
    """``Path``: path, ``List[Path]``: list, ``Set[Path]``: set, ``Dict[str, Path]``: dict,
    ``NestedDict[Path]``: nested; with ``STR_LEAF`` appended where the leaves are ``str``.
    ``Union[X, HDF5Datasets]`` is X's kind; ``HDF5Datasets`` alone is a list of paths (dflow
    reads ``.h5`` files into datasets with h5py; hpcflow hands the files)."""
    hdf5 = _hdf5_marker()
    if type_ is hdf5:
        return "list"
    origin = get_origin(type_)
    if origin is Union or origin is types.UnionType:
        rest = [a for a in get_args(type_) if a is not hdf5 and a is not type(None)]
        if len(rest) == 1:
            return artifact_kind(rest[0])
    args = get_args(type_)
    leaf = STR_LEAF if type_ is str or (args and args[-1] is str) else ""
    if type_ in (Path, str):
        return "path" + leaf
    if origin is list:
        return "list" + leaf
    if origin in (set, frozenset):
        return "set" + leaf
    if origin is dict:
        return "dict" + leaf
    if origin is NestedDict or type_ is NestedDict:
        return "nested" + leaf
    raise WorkflowDefinitionError(
        f"Artifact type {type_!r} is not supported: use Path, str, List[Path], Set[Path], "
        "Dict[str, Path], NestedDict[Path] or HDF5Datasets (or their str forms)"
    )


def split_kind(kind: str) -> tuple[str, bool]:
    """``"list:str"`` -> ``("list", True)``: the shape, and whether the leaves are ``str``."""
    return kind.removesuffix(STR_LEAF), kind.endswith(STR_LEAF)


class Artifact:
    """Sign of an input or output artifact, with dflow's arguments in dflow's order:
    ``Artifact(Path, archive="default", save=None, optional=False, global_name=None)``."""

    def __init__(
        self,
        type: Any,
        archive: str | None = "default",
        save: Any = None,
        optional: bool = False,
        global_name: str | None = None,
        sub_path: bool = True,
        **kwargs: Any,
    ) -> None:
        self.type = type
        self.kind, self.str_leaf = split_kind(artifact_kind(type))
        self.optional = optional
        if archive not in ("default", "tar", None):
            raise WorkflowDefinitionError(
                f"Artifact archive={archive!r} is not supported: use 'tar' or None"
            )
        self.archive = archive
        if save:
            raise WorkflowDefinitionError(
                "Artifact(save=...) is not supported: hpcflow stores an output artifact once, "
                "in the workflow's storage; copy it elsewhere after the step (copy_artifact, "
                "download_artifact)")
        self.save = save
        self.global_name = global_name
        self.sub_path = sub_path
        for name, value in kwargs.items():  # as dflow, other keywords become attributes
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"Artifact({self.type!r}, optional={self.optional})"


class Parameter:
    """Sign of a parameter with a type and, optionally, a default: ``Parameter(int, default=1)``.
    As in dflow, ``hasattr(sign, "default")`` says whether it has one."""

    def __init__(self, type: Any, default: Any = _UNSET, global_name: str | None = None,
                 **kwargs: Any) -> None:
        self.type = type
        self._default = default
        self.global_name = global_name
        self.extra = kwargs

    @property
    def default(self) -> Any:
        if self._default is _UNSET:
            raise AttributeError(f"{self!r} has no default")
        return self._default

    @default.setter
    def default(self, value: Any) -> None:
        self._default = value

    @property
    def has_default(self) -> bool:
        return self._default is not _UNSET

    def __repr__(self) -> str:
        return f"Parameter({self.type!r})"


class BigParameter(Parameter):
    """A parameter meant to be large: hpcflow stores its value once, by digest, whatever its
    size, and does not warn about it (dflow keeps these in artifact storage)."""


class _NameMap(MutableMapping):
    """A mapping from sign names to values; the shared body of ``OPIOSign`` and ``OPIO``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._data: dict[str, Any] = dict(*args, **kwargs)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class OPIOSign(_NameMap):
    """A mapping from input or output name to its sign (a type, ``Artifact`` or ``Parameter``)."""


class OPIO(_NameMap):
    """The values an OP receives or returns, keyed by sign name."""


def split_sign(sign: OPIOSign | dict) -> tuple[dict[str, Parameter], dict[str, Artifact]]:
    """Parameters and artifacts of a sign; plain types become ``Parameter(type)``."""
    parameters: dict[str, Parameter] = {}
    artifacts: dict[str, Artifact] = {}
    for name, value in dict(sign).items():
        if isinstance(value, Artifact):
            artifacts[name] = value
        elif isinstance(value, Parameter):
            parameters[name] = value
        else:
            parameters[name] = Parameter(value)
    return parameters, artifacts


def is_list_type(type_: Any) -> bool:
    return get_origin(type_) in (list, list) or type_ is list


def list_item_type(type_: Any) -> Any:
    args = get_args(type_)
    return args[0] if args else Any
