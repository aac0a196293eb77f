"""The web dashboard and the workflow graph (``hpcflow graph``): optional extra ``ui``."""
