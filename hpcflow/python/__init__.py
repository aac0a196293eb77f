"""Python OPs with dflow's names: ``from hpcflow.python import OP, OPIO, PythonOPTemplate``."""

from hpcflow.python.hdf5 import HDF5Datasets
from hpcflow.python.op import OP, FatalError, OPSignError, TransientError
from hpcflow.python.signs import OPIO, Artifact, BigParameter, NestedDict, OPIOSign, Parameter
from hpcflow.python.template import PythonOPTemplate, Slices, upload_packages

__all__ = [
    "OP",
    "OPIO",
    "Artifact",
    "BigParameter",
    "FatalError",
    "HDF5Datasets",
    "NestedDict",
    "OPIOSign",
    "OPSignError",
    "Parameter",
    "PythonOPTemplate",
    "Slices",
    "TransientError",
    "upload_packages",
]
