"""Batch schedulers (Slurm, ...): each one module that turns a job into the scheduler's own
commands and reads its answers. Pure text in, text out; the batch executor runs them."""

from hpcflow.connectors.schedulers.base import JobScript, Scheduler, SchedulerState

__all__ = ["JobScript", "Scheduler", "SchedulerState"]
