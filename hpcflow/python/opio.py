"""dflow's ``dflow.python.opio``: signs and the OPIO mapping under dflow's module name."""

from hpcflow.python.hdf5 import HDF5Dataset, HDF5Datasets
from hpcflow.python.signs import OPIO, Artifact, BigParameter, NestedDict, OPIOSign, Parameter

__all__ = ["OPIO", "Artifact", "BigParameter", "HDF5Dataset", "HDF5Datasets", "NestedDict",
           "OPIOSign", "Parameter"]
