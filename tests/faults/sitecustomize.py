"""Fault injection for the exactly-once tests, never installed outside them.

A test puts this folder first on the ``PYTHONPATH`` of the daemon it starts and names the
fault in ``HPCFLOW_TEST_FAULT``; Python imports this module at start-up and registers the
fault at hpcflow's fault points (``hpcflow.faults``):

- ``kill-after-submit``: SIGKILL the daemon the moment the first job was submitted, before
  its id is recorded (the worst moment to crash);
- ``kill-in-dispatcher-submit``: SIGKILL it right after dpdispatcher's first submission
  returned, before dpdispatcher saved its state.
"""

import logging
import os
import signal

_FAULT = os.environ.get("HPCFLOW_TEST_FAULT")
log = logging.getLogger("hpcflow.engine")


def _die(what: str) -> None:
    log.error("fault injection: SIGKILL after %s", what)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_after_dispatcher_submit(machine) -> None:
    submit = machine.do_submit

    def submit_then_die(job):
        job_id = submit(job)
        _die(f"dpdispatcher submitted {job_id}")
        return job_id

    machine.do_submit = submit_then_die


if _FAULT:
    from hpcflow import faults

    if _FAULT == "kill-after-submit":
        faults.on(faults.AFTER_SUBMIT, lambda what: _die(f"submitting {what}"))
    elif _FAULT == "kill-in-dispatcher-submit":
        faults.on(faults.DISPATCHER_SUBMIT, _kill_after_dispatcher_submit)
    else:
        raise SystemExit(f"tests/faults: unknown HPCFLOW_TEST_FAULT {_FAULT!r}")
