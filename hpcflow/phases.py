"""Phase names, once for every layer: Argo's words, as dflow shows them.

The author API, the CLI and the engine's state machine (``hpcflow.daemon.states``, which
holds the transition tables) all read them from here.
"""

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
ERROR = "Error"
SKIPPED = "Skipped"
OMITTED = "Omitted"
TERMINATED = "Terminated"

STEP_FINAL = frozenset({SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED})
STEP_LIVE = frozenset({PENDING, RUNNING})
STEP_OK = frozenset({SUCCEEDED, SKIPPED})
WORKFLOW_FINAL = frozenset({SUCCEEDED, FAILED, ERROR, TERMINATED})
WORKFLOW_LIVE = frozenset({PENDING, RUNNING})
