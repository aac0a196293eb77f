"""The job lifecycle is pure: each rule for a step whose job ended, without store or process."""

import pytest

from hpcflow.connectors.executors.base import JobResult, seal_result
from hpcflow.daemon import states
from hpcflow.daemon.lifecycle import (
    INFRASTRUCTURE_RETRIES,
    Finish,
    Retry,
    StepFacts,
    decide,
    queue_change,
)

RUNNING_FIRST = StepFacts(states.RUNNING, 0)


def test_a_success_finishes_with_its_outputs():
    end = JobResult.from_record({"phase": "Succeeded", "outputs": {"parameters": {"y": "1"}}})
    assert decide(end, RUNNING_FIRST, {"retry_on_transient_error": 3}) == Finish(
        states.SUCCEEDED, None, {"parameters": {"y": "1"}})


def test_a_plain_failure_is_final_whatever_the_retry_setting():
    end = JobResult.from_record({"phase": "Failed", "reason": "ValueError: x"})
    assert decide(end, RUNNING_FIRST, {"retry_on_transient_error": 3}) == Finish(
        states.FAILED, "ValueError: x", None)


def test_a_transient_error_is_retried_up_to_the_limit():
    end = JobResult.from_record({"phase": "Failed", "reason": "TransientError: net",
                              "transient": True})
    template = {"retry_on_transient_error": 2}
    assert decide(end, StepFacts(states.RUNNING, 0), template) == Retry(
        "attempt 1 of 3 failed (TransientError: net); retrying")
    assert isinstance(decide(end, StepFacts(states.RUNNING, 1), template), Retry)
    assert decide(end, StepFacts(states.RUNNING, 2), template) == Finish(
        states.FAILED, "TransientError: net", None)
    assert decide(end, RUNNING_FIRST, {}) == Finish(states.FAILED, "TransientError: net", None)


@pytest.mark.parametrize("why", ["the job's node failed (Slurm NODE_FAIL)",
                                 "the job was preempted (Slurm PREEMPTED)"])
def test_node_failure_and_preemption_get_their_own_attempts(why):
    end = JobResult.from_record({"phase": "Failed", "reason": why, "infrastructure": True})
    for attempt in range(INFRASTRUCTURE_RETRIES):
        assert isinstance(decide(end, StepFacts(states.RUNNING, attempt), {}), Retry)
    assert decide(end, StepFacts(states.RUNNING, INFRASTRUCTURE_RETRIES), {}) == Finish(
        states.FAILED, why, None)
    # a template that allows more keeps its own limit
    template = {"retry_on_transient_error": 5}
    assert isinstance(decide(end, StepFacts(states.RUNNING, 4), template), Retry)


def test_a_timeout_is_final_unless_the_template_makes_it_transient():
    end = JobResult.past_deadline("TimeoutError: the step ran longer than its timeout")
    assert decide(end, RUNNING_FIRST, {"retry_on_transient_error": 1}) == Finish(
        states.FAILED, "TimeoutError: the step ran longer than its timeout", None)
    template = {"retry_on_transient_error": 1, "timeout_as_transient_error": True}
    assert isinstance(decide(end, RUNNING_FIRST, template), Retry)
    # the scheduler's time limit (Slurm TIMEOUT) counts the same
    scheduler = JobResult.from_record({"phase": "Failed", "reason": "TIMEOUT", "timed_out": True})
    assert isinstance(decide(scheduler, RUNNING_FIRST, template), Retry)


@pytest.mark.parametrize("on,phase,retried", [
    ("Failed", states.FAILED, True), ("Failed", states.ERROR, False),
    ("Error", states.ERROR, True), ("Error", states.FAILED, False),
    ("Always", states.FAILED, True), ("Always", states.ERROR, True)])
def test_dflow_retry_policies_name_the_phases_they_retry(on, phase, retried):
    end = JobResult.from_record({"phase": phase, "reason": "r"})
    template = {"retry_policy": {"on": on, "limit": 2}}
    assert isinstance(decide(end, StepFacts(states.RUNNING, 1), template), Retry) is retried
    assert isinstance(decide(end, StepFacts(states.RUNNING, 2), template), Finish)


def test_a_lost_job_is_an_error_retried_only_by_a_policy():
    end = JobResult.lost("job 12 is neither in the queue nor in the accounting")
    assert decide(end, RUNNING_FIRST, {"retry_on_transient_error": 2}) == Finish(
        states.ERROR, "job 12 is neither in the queue nor in the accounting", None)
    assert isinstance(decide(end, RUNNING_FIRST, {"retry_policy": {"on": "Error",
                                                                   "limit": 1}}), Retry)


def test_a_result_that_cannot_be_used_is_an_error():
    end = JobResult.unusable("output 'big' could not be stored: disk full")
    assert decide(end, RUNNING_FIRST, {}) == Finish(
        states.ERROR, "output 'big' could not be stored: disk full", None)


@pytest.mark.parametrize("phase", [states.SUCCEEDED, states.FAILED, states.ERROR,
                                   states.SKIPPED])
def test_a_step_no_longer_live_is_left_as_it_is(phase):
    """Terminated (failed by the user) or final already: the late job end changes only the
    job's record."""
    end = JobResult.from_record({"phase": "Failed", "transient": True})
    assert decide(end, StepFacts(phase, 0), {"retry_on_transient_error": 3}) is None


def test_a_slice_count_is_believed_only_from_a_sealed_result():
    result = {"phase": "Failed", "succeeded_slices": 3}
    assert JobResult.from_record(seal_result(result, "k")).trusted("k").succeeded_slices == 3
    assert JobResult.from_record(result).trusted("k").succeeded_slices is None
    assert JobResult.from_record(seal_result({"phase": "Failed", "succeeded_slices": "3"}, "k")
                                 ).trusted("k").succeeded_slices is None


def test_a_job_that_ended_before_a_poll_saw_it_start_ends_its_pending_step():
    """A short job can start and end between two polls: its step, still Pending (queued),
    finishes or retries as a Running one would."""
    ok = JobResult.from_record({"phase": "Succeeded", "outputs": {}})
    assert decide(ok, StepFacts(states.PENDING, 0), {}) == Finish(states.SUCCEEDED, None, {})
    flaky = JobResult.from_record({"phase": "Failed", "reason": "r", "transient": True})
    assert isinstance(decide(flaky, StepFacts(states.PENDING, 0),
                             {"retry_on_transient_error": 1}), Retry)


def test_queued_steps_are_pending_with_the_schedulers_reason_until_their_job_starts():
    assert queue_change(states.PENDING, None, "queued", "Resources", "hpc") == (
        states.PENDING, "waiting in hpc's queue: Resources")
    # the reason follows the scheduler's; an unchanged one writes nothing
    assert queue_change(states.PENDING, "waiting in hpc's queue: Resources", "queued",
                        "Priority", "hpc") == (states.PENDING, "waiting in hpc's queue: Priority")
    assert queue_change(states.PENDING, "waiting in hpc's queue: Priority", "queued",
                        "Priority", "hpc") is None
    assert queue_change(states.PENDING, None, "queued", None, "sge") == (
        states.PENDING, "waiting in sge's queue")
    # started: Running, the reason cleared; a requeued job makes its step Pending again
    assert queue_change(states.PENDING, "x", "running", None, "hpc") == (states.RUNNING, None)
    assert queue_change(states.RUNNING, None, "queued", "BeginTime", "hpc") == (
        states.PENDING, "waiting in hpc's queue: BeginTime")
    # no news, or a step no longer live: nothing
    assert queue_change(states.PENDING, None, "submitted", None, "hpc") is None
    assert queue_change(states.FAILED, "terminated", "running", None, "hpc") is None
