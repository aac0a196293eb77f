"""``JobResult``: how executors report a job's end, and what of it the daemon may use."""

from hpcflow.connectors.executors.base import JobResult, seal_result
from hpcflow.daemon import states

KEY = "step-key"


def test_a_sealed_record_is_used_with_its_outputs():
    record = seal_result({"phase": "Succeeded", "outputs": {"parameters": {"y": "1"}}}, KEY)
    result = JobResult.from_bytes(repr(record).replace("'", '"').encode())
    assert result is not None
    trusted = result.trusted(KEY)
    assert trusted.succeeded and trusted.outputs == {"parameters": {"y": "1"}}
    assert trusted.trusted(KEY) is trusted


def test_a_planted_or_altered_record_is_an_error_and_nothing_of_it_is_used():
    planted = JobResult.from_record({"phase": "Succeeded", "outputs": {"parameters": {}}})
    assert planted.trusted(KEY).phase == states.ERROR
    assert "has no seal" in (planted.trusted(KEY).reason or "")
    assert planted.trusted(KEY).outputs is None
    sealed = seal_result({"phase": "Succeeded", "outputs": {"parameters": {"y": "1"}}}, KEY)
    altered = JobResult.from_record({**sealed, "outputs": {"parameters": {"y": "2"}}})
    assert "does not match" in (altered.trusted(KEY).reason or "")
    assert JobResult.from_record(sealed).trusted("another key").phase == states.ERROR


def test_an_executors_own_account_keeps_its_reason():
    """The executor's word about a job that ended without a usable result (outputs that
    could not be brought back from the machine, a scheduler's kill) reaches the step as it
    is; it is never taken for a planted result, and it never carries outputs."""
    why = "cannot bring the outputs back from hpc: no such file"
    assert JobResult.without_runner(states.ERROR, why).trusted(KEY).reason == why
    killed = JobResult.without_runner(states.FAILED, "TIMEOUT", timed_out=True).trusted(KEY)
    assert (killed.phase, killed.reason, killed.timed_out) == (states.FAILED, "TIMEOUT", True)
    claims = JobResult.without_runner(states.SUCCEEDED, None).trusted(KEY)
    assert claims.phase == states.ERROR and claims.outputs is None


def test_a_result_being_written_is_not_read_yet():
    assert JobResult.from_bytes(b'{"phase": "Succ') is None
    assert JobResult.from_bytes(b'["not", "a", "record"]') is None
