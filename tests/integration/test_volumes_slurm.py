"""dflow's async example (a step reads another's output through a volume, ``.pvc()``, while
that step still runs) with both steps as jobs of the real one-node Slurm of
``tests/services``: the runner in each job finds the workflow's volume beside its step
directory. The example and its checks: ``tests/e2e/test_dflow_volumes.py``."""

from pathlib import Path

from tests.e2e.test_dflow_volumes import run_async_example


def test_two_slurm_jobs_share_a_volume_while_both_run(tmp_path: Path, slurm_env: dict) -> None:
    steps = run_async_example(tmp_path, executor='SlurmExecutor(partition="debug")',
                              executor_import="from hpcflow import SlurmExecutor", env=slurm_env)
    jobs = {s["name"]: (s["machine"], s["job_id"]) for s in steps if s["type"] == "Pod"}
    assert set(jobs) == {"hello", "echo"}
    assert all(machine == "slurm" and str(job).isdigit() for machine, job in jobs.values()), jobs
