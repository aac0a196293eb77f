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


def test_a_job_of_many_steps_gets_one_short_seed_per_workflow_and_its_results_are_trusted(
        tmp_path, monkeypatch):
    """A pack or an array of 2000 steps: its environment holds one seed per workflow
    directory (Grid Engine cuts a ``qsub -v`` value at about 10 KB), the runner derives each
    step's key from it, and the daemon trusts the results sealed so, and no others."""
    import json

    from hpcflow.connectors.executors.base import RESULT_KEYS_ENV
    from hpcflow.daemon import runner
    from hpcflow.secrets import ResultKeys

    keys = ResultKeys(tmp_path / "home")
    dirs = [f"/w/wf-1/step-{i}" for i in range(2000)]
    env = keys.env(dirs)
    assert len(env[RESULT_KEYS_ENV]) < 200
    monkeypatch.setenv(RESULT_KEYS_ENV, env[RESULT_KEYS_ENV])
    monkeypatch.setattr(runner, "_result_keys", {})
    runner.take_result_keys()
    from pathlib import Path

    record = runner.sealed(Path(dirs[7]), {"phase": "Succeeded", "outputs": None})
    result = JobResult.from_record(json.loads(json.dumps(record)))
    assert result.trusted(keys.keys(dirs[7])).sealed
    assert not result.trusted(keys.keys("/w/wf-1/step-8")).sealed  # another step's
    assert not result.trusted(keys.keys("/w/wf-2/step-7")).sealed  # another workflow's
    assert not result.trusted(ResultKeys(tmp_path / "other").keys(dirs[7])).sealed
    # a pack's member, as its runner sees it: relative to the pack's own directory
    member = Path("/w/wf-1/packs/hpcflow-wf-1-9-0-pack/../../step-9").absolute()
    packed = JobResult.from_record(runner.sealed(member, {"phase": "Succeeded",
                                                          "outputs": None}))
    assert packed.trusted(keys.keys(dirs[9])).sealed
