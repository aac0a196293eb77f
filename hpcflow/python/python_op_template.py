"""dflow's ``dflow.python.python_op_template`` under its module name."""

from hpcflow.python.op import FatalError, TransientError
from hpcflow.python.template import PythonOPTemplate, Slices, upload_packages

__all__ = ["FatalError", "PythonOPTemplate", "Slices", "TransientError", "upload_packages"]
