"""The Slurm module on recorded output: scripts, ids, states, and what it refuses."""

from pathlib import Path

import pytest

from hpcflow.connectors.schedulers.base import JobScript, SchedulerError
from hpcflow.connectors.schedulers.slurm import SlurmScheduler
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.executors import SlurmExecutor

SLURM = SlurmScheduler()


def job(**resources) -> JobScript:
    return JobScript(name="hpcflow-wf-abcde-7-0", step_dir="/scratch/wf-abcde/s-7",
                     command=["/opt/py/bin/python", "-m", "hpcflow.daemon.runner",
                              "/scratch/wf-abcde/s-7"],
                     prepare=["module load python"], resources=resources)


def test_the_job_script_carries_the_resources_and_runs_the_runner():
    text = SLURM.render(job(partition="gpu", time="1:00:00", cpus_per_task=4, gpus=1,
                            mem="8G", exclusive=True,
                            extra_directives=["--constraint=a100"]))
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("#SBATCH --job-name=hpcflow-wf-abcde-7-0", "#SBATCH --partition=gpu",
                 "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=4", "#SBATCH --gpus=1",
                 "#SBATCH --mem=8G", "#SBATCH --exclusive", "#SBATCH --constraint=a100",
                 "#SBATCH --output=/scratch/wf-abcde/s-7/log.txt",
                 "#SBATCH --chdir=/scratch/wf-abcde/s-7", "module load python"):
        assert line in lines
    assert lines[-1] == ("exec /opt/py/bin/python -m hpcflow.daemon.runner "
                         "/scratch/wf-abcde/s-7")
    assert lines.index("module load python") < len(lines) - 1


@pytest.mark.parametrize("resources, message", [
    ({"partition": "debug\n#SBATCH --uid=0"}, "resource partition="),
    ({"time": "1:00; rm -rf ~"}, "resource time="),
    ({"account": ""}, "resource account="),
    ({"partiton": "debug"}, "unknown Slurm resource 'partiton'"),
    ({"extra_directives": ["--a\n--b"]}, "must be one non-empty line"),
])
def test_hostile_or_mistyped_resources_are_refused(resources, message):
    with pytest.raises(SchedulerError, match=message):
        SLURM.render(job(**resources))


def test_ids_and_states_from_recorded_output():
    assert SLURM.parse_submit("4242\n") == "4242"
    with pytest.raises(SchedulerError, match="not a job id"):
        SLURM.parse_submit("sbatch: error: Batch job submission failed")
    polled = SLURM.parse_poll(
        "10|hpcflow-a-1-0|PENDING|Priority\n11|hpcflow-a-2-0|RUNNING|None\n"
        "12|hpcflow-a-3-0|COMPLETING|None\n13|hpcflow-a-4-0|OUT_OF_MEMORY|OutOfMemory\n"
        "14|hpcflow-a-5-0|PREEMPTED|None\n15|hpcflow-a-6-0|CANCELLED|None\n")
    assert [polled[i].state for i in ["10", "11", "12", "13", "14", "15"]] == [
        "queued", "running", "running", "done", "done", "done"]
    assert "ran out of memory" in (polled["13"].reason or "")
    assert polled["14"].infrastructure and not polled["13"].infrastructure
    assert "cancelled outside hpcflow" in (polled["15"].reason or "")
    accounted = SLURM.parse_accounting("20|COMPLETED|0:0\n21|FAILED|3:0\n22|CANCELLED by 0|0:15\n")
    assert accounted["21"].exit_code == 3 and accounted["21"].state == "done"
    assert accounted["22"].raw == "CANCELLED"
    assert SLURM.parse_find("31\n\n") == ["31"]
    assert SLURM.poll_argv(["1", "2"])[:2] == ["squeue", "--me"]  # one call, no -j list


def test_the_sdk_executor_checks_its_resources():
    spec = SlurmExecutor(machine="hpc", partition="cpu", time="2:00:00", mem=None,
                         extra_directives=["--exclusive"]).to_spec()
    assert spec == {"kind": "batch", "scheduler": "slurm", "machine": "hpc",
                    "resources": {"partition": "cpu", "time": "2:00:00",
                                  "extra_directives": ["--exclusive"]}}
    assert SlurmExecutor().to_spec()["machine"] == "slurm"
    with pytest.raises(WorkflowDefinitionError, match="no resource 'cpus'"):
        SlurmExecutor(cpus=4)


def recorded(name: str) -> str:
    return (Path(__file__).parent / "data" / "slurm" / name).read_text()


def test_final_states_from_sacct_recorded_on_the_test_cluster():
    """``sacct --parsable2`` of Slurm 22.05 with slurmdbd (tests/services): a completed job, a
    failed one (exit 3), one cancelled by root, one killed for its time limit, an array's
    elements (one failed) and a throttled array cancelled while its rest was pending. Job
    steps (``.batch``) and the pending rest of an array (``11922_[1-4%1]``) are not jobs."""
    argv = SLURM.accounting_argv(["11923", "11921_2"])
    assert argv[0] == "sacct" and "--completion" not in argv and "--allocations" in argv
    assert "--jobs=11923,11921_2" in argv
    ended = SLURM.parse_accounting(recorded("sacct-states-arrays.txt"))
    assert sorted(ended) == sorted(["11450", "11819", "11923", "11924", "11921_1", "11921_2",
                                    "11921_3", "11922_1"])
    assert {i: s.raw for i, s in ended.items()} == {
        "11450": "CANCELLED", "11819": "TIMEOUT", "11923": "COMPLETED", "11924": "FAILED",
        "11921_1": "COMPLETED", "11921_2": "FAILED", "11921_3": "COMPLETED",
        "11922_1": "CANCELLED"}
    assert all(s.state == "done" for s in ended.values())
    assert ended["11924"].exit_code == 3 and ended["11921_2"].exit_code == 1
    assert ended["11450"].reason == ("the job was cancelled outside hpcflow by uid 0 (Slurm "
                                     "CANCELLED: scancel or an administrator)")
    assert ended["11819"].timed_out and "time limit" in (ended["11819"].reason or "")
    assert ended["11923"].reason is None and not ended["11923"].infrastructure
    # the node under job 7 set down (tests/integration/test_slurm_node_failure.py)
    lost = SLURM.parse_accounting(recorded("sacct-node-fail.txt"))["7"]
    assert lost.infrastructure and lost.state == "done" and "node failed" in (lost.reason or "")


def test_states_the_test_cluster_cannot_produce():
    """Not recorded (no cgroups to kill a job for its memory, no preemption configured):
    sacct's lines in the same format, as a production cluster prints them."""
    ended = SLURM.parse_accounting("30|OUT_OF_MEMORY|0:125\n31|PREEMPTED|0:15\n"
                                   "32_4|CANCELLED by 1001|0:15\n33|CANCELLED|0:0\n")
    assert "ran out of memory" in (ended["30"].reason or "")
    assert not ended["30"].infrastructure and ended["31"].infrastructure
    assert "by uid 1001" in (ended["32_4"].reason or "")
    assert "by uid" not in (ended["33"].reason or "")  # who is unknown: no guess


def test_jobs_say_no_requeue():
    """Slurm's own requeue after a node failure would start the job again minutes later,
    unseen: hpcflow retries it itself (a user's --requeue, later in the script, still wins)."""
    lines = SLURM.render(job(extra_directives=["--requeue"])).splitlines()
    assert lines.index("#SBATCH --no-requeue") < lines.index("#SBATCH --requeue")
