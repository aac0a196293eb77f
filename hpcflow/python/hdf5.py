"""``HDF5Datasets``: dflow's marker type for artifacts held as HDF5 datasets.

A type only, as in dflow (where it carries no behaviour of its own): signs such as
``Artifact(Union[List[Path], HDF5Datasets])`` name it.
"""


class HDF5Datasets:
    """Marker for an artifact given as HDF5 datasets (used in OP signs)."""
