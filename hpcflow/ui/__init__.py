"""hpcflow's web dashboard (``hpcflow ui``) and workflow graphs."""
