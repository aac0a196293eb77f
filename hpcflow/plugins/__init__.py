"""dflow's ``dflow.plugins`` package: ``hpcflow.plugins.dispatcher`` and ``.bohrium``."""
