"""The engine: the store (the only SQL), the state machine, the planner, the service loop and
the in-job runner. Keep this package's import light: the runner starts a process per step."""
