"""A stand-in Argo Server (v3.7.18 REST API) with a simulated workflow controller, for tests.

Kubernetes and Argo cannot run on the test machines, so hpcflow's Argo executor is tested
against this process instead. It is NOT Argo: it speaks the routes and JSON shapes of Argo's
OpenAPI spec (``swagger.json``, vendored here with Argo's JSON Schema ``schema.json``; see
NOTICE), answers errors as Argo's grpc-gateway does, and runs each Workflow's pods as local
processes. Start it with ``python -m tests.services.argo_standin --help`` (from the repository
root) or through :class:`tests.services.argo_standin.launcher.StandinArgo`.

The pod contract (what a Workflow's containers may assume here):

* The ``image`` is recorded, never pulled. ``command`` + ``args`` run on this host; a command
  named ``python``/``python3``/``python3.X`` runs the ``python3`` first on the stand-in's PATH.
* A pod's filesystem is a directory ROOT (``STATE/pods/NAMESPACE/POD``): every absolute path
  the manifest names (``workingDir``, artifact and parameter paths) P is ROOT+P on the host,
  and the process starts in ROOT+workingDir (ROOT when unset). Commands must therefore use
  RELATIVE paths (``cat in/data.txt``, not ``cat /in/data.txt``), or derive absolute ones
  from their current directory.
* The environment is the container's ``env`` (``value`` and ``valueFrom.secretKeyRef``
  resolved from ``--secrets``) plus PATH/LANG of the stand-in and HOME=ROOT.
* stdout and stderr form the ``main`` container's log.

What it replays of Argo (messages taken from Argo v3.7.18's code and Kubernetes' kubelet) is
listed in the module docstrings of ``controller``, ``pods`` and ``faults``.
"""
