"""The batch executor's own rules, with a recording transport in place of a machine."""

from pathlib import Path

import pytest

from hpcflow.config_file import MachineConfig
from hpcflow.connectors.executors.base import JobSpec
from hpcflow.connectors.executors.batch import BatchExecutor
from hpcflow.connectors.schedulers.slurm import SlurmScheduler
from hpcflow.connectors.transports.base import CommandResult
from hpcflow.connectors.transports.local import LocalTransport


class RecordingTransport(LocalTransport):
    """Files go to a local directory; ``sbatch`` answers with increasing job ids."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[list[str]] = []

    def run(self, argv, timeout=120.0, input_text=None):
        self.commands.append(argv)
        return CommandResult(0, f"{100 + len(self.commands)}\n", "")


def executor(tmp_path: Path, **machine) -> tuple[BatchExecutor, RecordingTransport]:
    transport = RecordingTransport()
    config = MachineConfig(name="hpc", scheduler="slurm", **machine)
    return BatchExecutor(config, SlurmScheduler(), transport, str(tmp_path), "python3"), transport


STEP = {"template": {"kind": "python"}, "inputs": {}, "storage": {"kind": "local", "root": "/x"}}


def job(name: str, step_dir: str) -> JobSpec:
    return JobSpec(name, step_dir, STEP)


def test_submissions_per_minute_bound_the_free_slots(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    import hpcflow.connectors.executors.batch as batch

    now = [1000.0]
    monkeypatch.setattr(batch.time, "monotonic", lambda: now[0])
    ex, _ = executor(tmp_path, max_jobs=10, submit_per_minute=2)
    assert ex.free_slots() == 2
    ex.submit(job("hpcflow-a-1-0", f"{tmp_path}/s1"))
    now[0] += 10
    ex.submit(job("hpcflow-a-2-0", f"{tmp_path}/s2"))
    assert ex.free_slots() == 0  # two in the last minute
    now[0] += 51
    assert ex.free_slots() == 1  # the first is over a minute old
    now[0] += 10
    assert ex.free_slots() == 2


def test_queue_room_bounds_the_free_slots(tmp_path: Path):
    ex, _ = executor(tmp_path, max_jobs=2)
    ex.submit(job("hpcflow-a-1-0", f"{tmp_path}/s1"))
    assert ex.free_slots() == 1


def test_a_pack_is_one_submission_of_every_member(tmp_path: Path):
    ex, transport = executor(tmp_path)
    dirs = [f"{tmp_path}/wf/s{i}" for i in range(3)]
    native = ex.submit_pack("hpcflow-wf-1-0-pack",
                            [job(f"hpcflow-wf-{i}-0", d) for i, d in enumerate(dirs)])
    assert native == "101" and len(transport.commands) == 1
    script = Path(tmp_path, "wf", "packs", "hpcflow-wf-1-0-pack", "job.sh").read_text()
    # relative to the job's directory: `ps` on a shared node shows no workflow id
    assert script.splitlines()[-1] == \
        "exec python3 -m hpcflow.daemon.runner --pack ../../s0 ../../s1 ../../s2"
    assert "umask 077" in script.splitlines()
    assert all(Path(d, "step.json").exists() for d in dirs)


def test_executor_defaults_from_the_template_and_the_workflow():
    from hpcflow import SlurmExecutor, Step, Workflow
    from hpcflow.python import OP, PythonOPTemplate
    from hpcflow.spec import build_spec

    @OP.function
    def one(x: int) -> {"y": int}:
        return {"y": x}

    wf = Workflow("defaults", executor=SlurmExecutor(machine="wfdefault"))
    wf.add(Step("plain", PythonOPTemplate(one), parameters={"x": 1}))
    wf.add(Step("templ", PythonOPTemplate(one, executor=SlurmExecutor(machine="tmpl")),
                parameters={"x": 1}))
    wf.add(Step("own", PythonOPTemplate(one, executor=SlurmExecutor(machine="tmpl")),
                parameters={"x": 1}, executor=SlurmExecutor(machine="mine")))
    spec, _ = build_spec(wf.name, wf.entry, default_executor=wf.executor)
    machines = {s["name"]: s["executor"]["machine"]
                for group in spec["templates"][spec["entrypoint"]]["steps"] for s in group}
    assert machines == {"plain": "wfdefault", "templ": "tmpl", "own": "mine"}


def test_a_job_held_in_error_is_failed_and_removed(tmp_path: Path):
    """Grid Engine's Eqw (recorded qstat output): the step fails with the reason and the job
    is deleted, so that it can never run beside a retry."""
    from hpcflow.connectors.executors.base import JobRecord
    from hpcflow.connectors.schedulers.sge import SGEScheduler

    recorded = (Path(__file__).parent / "data" / "sge" / "qstat-states.xml").read_text()

    class QstatTransport(RecordingTransport):
        def run(self, argv, timeout=120.0, input_text=None):
            self.commands.append(argv)
            return CommandResult(0, recorded if argv[0] == "qstat" else "", "")

    transport = QstatTransport()
    ex = BatchExecutor(MachineConfig(name="sge", scheduler="sge"), SGEScheduler(), transport,
                       str(tmp_path), "python3")
    jobs = [JobRecord(1, "hpcflow-w-1-0", f"{tmp_path}/a", "21", "submitted", 0.0),
            JobRecord(2, "hpcflow-w-2-0", f"{tmp_path}/b", "22", "submitted", 0.0)]
    held, waiting = ex.poll(jobs)
    assert held.state == "finished" and held.result is not None
    assert held.result.phase == "Failed"
    assert "error state (Eqw)" in (held.result.reason or "")
    assert waiting.state == "queued" and waiting.detail == "held (hqw)"
    assert transport.commands[-1] == ["qdel", "21"]


def test_capabilities_decided_once_per_class_agree_with_isinstance(tmp_path: Path):
    from hpcflow.connectors.executors import base
    from hpcflow.connectors.executors.local import LocalExecutor
    from hpcflow.connectors.schedulers.process import ProcessScheduler

    slurm, _ = executor(tmp_path)
    shell = BatchExecutor(MachineConfig(name="sh", scheduler="shell"), ProcessScheduler(),
                          LocalTransport(), str(tmp_path), "python3")
    local = LocalExecutor(tmp_path, 2)
    for ex in (slurm, shell, local, slurm, shell, local):  # the second time from the cache
        assert base.packs_jobs(ex) == isinstance(ex, base.PacksJobs)
        assert base.claim_guarded(ex) == isinstance(ex, base.ClaimGuarded)
        assert base.reads_step_files(ex) == isinstance(ex, base.ReadsStepFiles)
        assert base.runs_arrays(ex) == (isinstance(ex, base.ArraysJobs) and ex.runs_arrays)
    assert base.runs_arrays(slurm) and not base.runs_arrays(shell)
    assert base.claim_guarded(local) and not base.claim_guarded(slurm)
