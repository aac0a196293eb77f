"""Queue limits are waited out, not failed.

1. Each scheduler tells a refusal for a limit on the user's jobs from a refusal for a mistake,
   on the messages its submit command really prints (recorded below, with where each format
   comes from). PBS and LSF are known here only through these formats (no real PBS or LSF
   runs on this machine: the messages are replayed as their documentation and their own
   test suites give them).
2. The batch executor lowers its ``max_jobs`` to what was live when the scheduler refused,
   makes room as jobs leave, and raises the limit again, one job per interval.
3. The engine holds a refused step back (Pending with the scheduler's words), closes the
   refused intent, and submits the step again once, under the same job name; a mistake still
   fails the step at once.

The integration tests (tests/integration/test_queue_limits.py) show the same on the real
Grid Engine and Slurm.
"""

from pathlib import Path
from typing import Any

import pytest

from hpcflow.config_file import MachineConfig
from hpcflow.connectors.executors.base import JobRecord, JobSpec, JobState, JobStatus
from hpcflow.connectors.executors.batch import BatchExecutor
from hpcflow.connectors.executors.queue_hold import PROBE_INTERVAL
from hpcflow.connectors.schedulers.base import QueueLimitError, SchedulerError
from hpcflow.connectors.schedulers.lsf import LSFScheduler
from hpcflow.connectors.schedulers.pbs import PBSScheduler
from hpcflow.connectors.schedulers.sge import SGEScheduler
from hpcflow.connectors.schedulers.slurm import SlurmScheduler
from hpcflow.connectors.transports.base import CommandResult
from hpcflow.connectors.transports.local import LocalTransport
from hpcflow.python import OP

# -- 1. the messages ----------------------------------------------------------------------

# Slurm 22.05.8 (the reason names and error texts of its libslurmfull; the two lines as sbatch
# prints them, as sites document them for their users).
SLURM_QOS_USER = (
    "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job "
    "submit limit, user's size and/or time limits)\n")
SLURM_ASSOC = (
    "sbatch: error: AssocMaxSubmitJobLimit\n"
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job "
    "submit limit, user's size and/or time limits)\n")
SLURM_GRP = SLURM_ASSOC.replace("AssocMaxSubmitJobLimit", "QOSGrpSubmitJobsLimit")
SLURM_TABLE_FULL = ("sbatch: error: Slurm job queue full, sleeping and retrying\n"
                    "sbatch: error: Batch job submission failed: Unable to create job record, "
                    "try again\n")
# recorded from the test cluster's sbatch (Slurm 22.05.8): `sbatch -p nope`
SLURM_PARTITION = ("sbatch: error: invalid partition specified: nope\n"
                   "sbatch: error: Batch job submission failed: Invalid partition name "
                   "specified\n")
SLURM_ACCOUNT = ("sbatch: error: Batch job submission failed: Invalid account or "
                 "account/partition combination specified\n")
# a per-job size limit (DenyOnLimit): the job itself is too big, it never fits
SLURM_WALL = SLURM_ASSOC.replace("AssocMaxSubmitJobLimit", "QOSMaxWallDurationPerJobLimit")
# the policy line without a reason line: may be a size or time limit, so a mistake
SLURM_POLICY_ONLY = SLURM_ASSOC.split("\n", 1)[1]

# Son of Grid Engine 8.1.9: recorded from the test cluster's qsub with max_u_jobs 1 (exit 25)
# and with `-q nope` (exit 1).
SGE_MAX_U_JOBS = ("Unable to run job: job rejected: only 1 jobs are allowed per user (current "
                  "job count: 1)\nExiting.\n")
SGE_MAX_JOBS = "Unable to run job: job rejected: only 500 jobs are allowed per cluster\nExiting.\n"
SGE_UNKNOWN_QUEUE = ('Unable to run job: Job was rejected because job requests unknown queue '
                     '"nope"\nExiting.\n')

# OpenPBS: as its functional tests of entity limits expect qsub to print them (TestEntityLimits);
# Torque's PBSE_MAXQUED wording as users' scripts record it. Not a real PBS here: formats only.
PBS_QUEUE_USER = "qsub: would exceed queue workq's per-user limit\n"
PBS_COMPLEX_QUEUED = "qsub: would exceed complex's per-user limit of jobs in 'Q' state\n"
PBS_USER_IN_QUEUE = "qsub: Maximum number of jobs for user alice already in queue workq\n"
PBS_QUEUE_MAX = "qsub: Maximum number of jobs already in queue workq\n"
PBS_TORQUE = ("qsub: submit error (Maximum number of jobs already in queue for user MSG=total "
              "number of current user's jobs exceeds the queue limit: user alice@login1, "
              "queue batch)\n")
PBS_UNKNOWN_QUEUE = "qsub: Unknown queue\n"
PBS_RESOURCE = "qsub: would exceed per-user limit on resource ncpus in queue workq\n"

# LSF: the pending job threshold (MAX_PEND_JOBS) line; not a real LSF here: formats only.
LSF_PEND_USER = "User <alice>: Pending job threshold reached. Retrying in 60 seconds...\n"
LSF_PEND_GROUP = "Group <lab>: Pending job threshold reached. Retrying in 60 seconds...\n"
LSF_UNKNOWN_QUEUE = "nope: No such queue. Job not submitted.\n"

LIMITS = [
    (SlurmScheduler, SLURM_QOS_USER, "QOSMaxSubmitJobPerUserLimit"),
    (SlurmScheduler, SLURM_ASSOC, "AssocMaxSubmitJobLimit"),
    (SlurmScheduler, SLURM_GRP, "QOSGrpSubmitJobsLimit"),
    (SlurmScheduler, SLURM_TABLE_FULL, "MaxJobCount"),
    (SGEScheduler, SGE_MAX_U_JOBS, "max_u_jobs: job rejected: only 1 jobs are allowed per user"
                                   " (current job count: 1)"),
    (SGEScheduler, SGE_MAX_JOBS, "max_jobs: job rejected: only 500 jobs are allowed per "
                                 "cluster"),
    (PBSScheduler, PBS_QUEUE_USER, "would exceed queue workq's per-user limit"),
    (PBSScheduler, PBS_COMPLEX_QUEUED, "would exceed complex's per-user limit of jobs in 'Q'"),
    (PBSScheduler, PBS_USER_IN_QUEUE, "Maximum number of jobs for user alice already in queue"),
    (PBSScheduler, PBS_QUEUE_MAX, "Maximum number of jobs already in queue workq"),
    (PBSScheduler, PBS_TORQUE, "Maximum number of jobs already in queue"),
    (LSFScheduler, LSF_PEND_USER, "User <alice>: Pending job threshold reached"),
    (LSFScheduler, LSF_PEND_GROUP, "Group <lab>: Pending job threshold reached"),
]

MISTAKES = [
    (SlurmScheduler, SLURM_PARTITION), (SlurmScheduler, SLURM_ACCOUNT),
    (SlurmScheduler, SLURM_WALL), (SlurmScheduler, SLURM_POLICY_ONLY),
    (SGEScheduler, SGE_UNKNOWN_QUEUE),
    (PBSScheduler, PBS_UNKNOWN_QUEUE), (PBSScheduler, PBS_RESOURCE),
    (LSFScheduler, LSF_UNKNOWN_QUEUE),
]


@pytest.mark.parametrize("scheduler,output,words", LIMITS)
def test_a_refusal_for_a_limit_is_recognised_in_the_schedulers_words(scheduler, output, words):
    said = scheduler().submit_limit(output)
    assert said is not None and words in said, said


@pytest.mark.parametrize("scheduler,output", MISTAKES)
def test_a_refusal_for_a_mistake_is_not_a_limit(scheduler, output):
    assert scheduler().submit_limit(output) is None


# -- 2. the executor's limit ----------------------------------------------------------------

class ScriptedScheduler(LocalTransport):
    """Files go to a local directory; ``qsub`` answers with the next scripted answer (an id,
    or a refusal), ``qstat -xml`` with the jobs still listed in ``live``."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[CommandResult] = []
        self.submitted = 0
        self.live: list[str] = []

    def run(self, argv, timeout=120.0, input_text=None):
        if argv[0] == "qsub":
            answer = self.answers.pop(0) if self.answers else None
            if answer is None:
                self.submitted += 1
                native = str(100 + self.submitted)
                self.live.append(native)
                return CommandResult(0, f"{native}\n", "")
            return answer
        if argv[:2] == ["qstat", "-xml"]:
            jobs = "".join(f"<job_list state='running'><JB_job_number>{j}</JB_job_number>"
                           "<state>r</state></job_list>" for j in self.live)
            return CommandResult(0, f"<job_info><queue_info>{jobs}</queue_info></job_info>", "")
        return CommandResult(0, "", "")


STEP = {"template": {"kind": "python"}, "inputs": {}, "storage": {"kind": "local", "root": "/x"}}
REFUSED = CommandResult(25, "", SGE_MAX_U_JOBS)


def sge(tmp_path: Path, max_jobs: int = 10) -> tuple[BatchExecutor, ScriptedScheduler]:
    transport = ScriptedScheduler()
    config = MachineConfig(name="grid", scheduler="sge", max_jobs=max_jobs)
    return BatchExecutor(config, SGEScheduler(), transport, str(tmp_path), "python3"), transport


def submit(ex: BatchExecutor, tmp_path: Path, n: int) -> str:
    return ex.submit(JobSpec(f"hpcflow-wf-{n}-0", f"{tmp_path}/s{n}", STEP))


def records(transport: ScriptedScheduler, tmp_path: Path) -> list[JobRecord]:
    return [JobRecord(id=int(j), name=f"hpcflow-wf-{j}-0", step_dir=f"{tmp_path}/s{j}",
                      native_id=j, state=JobState.SUBMITTED, created_at=0.0)
            for j in transport.live]


def test_a_limit_lowers_max_jobs_to_what_was_live_and_jobs_leaving_make_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hpcflow.connectors.executors.batch as batch

    now = [1000.0]
    monkeypatch.setattr(batch.time, "time", lambda: now[0])
    ex, transport = sge(tmp_path)
    submit(ex, tmp_path, 1)
    submit(ex, tmp_path, 2)
    transport.answers = [REFUSED]
    with pytest.raises(QueueLimitError) as refused:
        submit(ex, tmp_path, 3)
    assert str(refused.value) == (
        "held back: Grid Engine refused a new job for its per-user job limit (max_u_jobs: job "
        "rejected: only 1 jobs are allowed per user (current job count: 1)); submitted again "
        "as jobs leave the queue")
    assert ex.free_slots() == 0  # 2 live, and 2 is what the queue takes now
    transport.live.remove("101")  # a job left the queue
    gone = JobRecord(id=101, name="hpcflow-wf-101-0", step_dir=f"{tmp_path}/gone",
                     native_id="101", state=JobState.RUNNING, created_at=0.0)
    statuses = ex.poll([*records(transport, tmp_path), gone])
    assert [s.state for s in statuses] == [JobState.RUNNING, JobState.SUBMITTED]
    # the vanished job counts as live until its grace is over: no room yet
    assert ex.free_slots() == 0
    ex.poll(records(transport, tmp_path))
    assert ex.free_slots() == 1
    report = ex.queue_hold.report(10, now[0])
    assert report is not None and report["max_jobs"] == 2 and "max_u_jobs" in report["reason"]


def test_the_lowered_limit_rises_one_job_per_interval_and_ends(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    import hpcflow.connectors.executors.batch as batch

    now = [1000.0]
    monkeypatch.setattr(batch.time, "time", lambda: now[0])
    ex, transport = sge(tmp_path, max_jobs=3)
    submit(ex, tmp_path, 1)
    transport.answers = [REFUSED]
    with pytest.raises(QueueLimitError):
        submit(ex, tmp_path, 2)
    assert ex.free_slots() == 0
    now[0] += PROBE_INTERVAL  # one more job may be tried
    assert ex.free_slots() == 1
    transport.answers = [REFUSED]  # still full: the next try waits twice as long
    with pytest.raises(QueueLimitError):
        submit(ex, tmp_path, 2)
    now[0] += PROBE_INTERVAL
    assert ex.free_slots() == 0
    now[0] += PROBE_INTERVAL
    assert ex.free_slots() == 1
    submit(ex, tmp_path, 2)  # taken: the limit follows
    assert ex.queue_hold.limit == 2
    now[0] += PROBE_INTERVAL
    submit(ex, tmp_path, 3)  # at the machine's own max_jobs: the hold is over
    assert ex.queue_hold.limit is None and ex.queue_hold.report(3, now[0]) is None


def test_a_mistake_is_a_scheduler_error_and_lowers_nothing(tmp_path: Path):
    ex, transport = sge(tmp_path)
    transport.answers = [CommandResult(1, "", SGE_UNKNOWN_QUEUE)]
    with pytest.raises(SchedulerError) as refused:
        submit(ex, tmp_path, 1)
    assert not isinstance(refused.value, QueueLimitError)
    assert 'unknown queue "nope"' in str(refused.value)
    assert ex.free_slots() == 10 and ex.queue_hold.limit is None


# -- 3. the engine ---------------------------------------------------------------------------

@OP.function
def one(x: int) -> {"y": int}:
    return {"y": x}


class LimitedQueue:
    """An executor in a queue that takes ``room`` jobs (``QueueLimitError`` beyond, as the
    batch executor raises it) and refuses a step called ``bad`` as a mistake. Jobs never
    start (the test looks at submissions only)."""

    queues = True

    def __init__(self, name: str, runs: Path, room: int) -> None:
        self.name, self.runs, self.room = name, runs, room
        self.names: list[str] = []  # every submission that reached the scheduler
        self.tries = 0

    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        return str(self.runs / f"{step_name}-{step_id}-{attempt}")

    def free_slots(self) -> int:
        return 10

    def submit(self, job: JobSpec) -> str:
        self.tries += 1
        if job.runner["name"].startswith("bad"):
            raise SchedulerError('qsub refused the job: Unable to run job: Job was rejected '
                                 'because job requests unknown queue "nope"')
        if len(self.names) >= self.room:
            raise QueueLimitError("held back: the test's queue is full; submitted again as "
                                  "jobs leave the queue")
        self.names.append(job.name)
        return str(len(self.names))

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        return [JobStatus(j.name, JobState.QUEUED, detail="Priority") for j in jobs]

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        return self.submit(job)

    def cancel(self, jobs: list[JobRecord]) -> None:
        pass

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        return None

    def close(self) -> None:
        pass


def test_the_engine_holds_refused_steps_back_and_submits_each_once(
        hpc_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from hpcflow import Step, Workflow
    from hpcflow.daemon import engine as engine_module
    from hpcflow.daemon.service import Service
    from hpcflow.python import PythonOPTemplate

    monkeypatch.setattr(engine_module, "ensure_engine", lambda *a, **k: None)

    wf = Workflow("limited")
    wf.add([Step(f"s{i}", PythonOPTemplate(one), parameters={"x": i}) for i in range(4)]
           + [Step("bad", PythonOPTemplate(one), parameters={"x": 9})])
    wf.submit()
    service = Service(hpc_home, parallelism=1)
    queue = LimitedQueue("local", tmp_path / "runs", room=2)
    service.executors["local"] = queue  # type: ignore[assignment]
    service.take_inbox()
    service.start_new_workflows()
    service.plan()
    service.submitter.submit_ready()
    store = service.store

    def steps() -> dict[str, Any]:
        return {s["name"]: s for s in store.query_steps(wf.id, type_="Pod")}

    got = steps()
    # two taken; the third refused for the limit, and the rest held back without a try
    assert len(queue.names) == 2 and queue.tries == 3
    held = sorted(n for n, s in got.items() if s["phase"] == "Pending"
                  and (s["reason"] or "").startswith("held back: the test's queue is full"))
    assert held == ["bad", "s2", "s3"], got  # bad not even tried: held back with the rest
    assert not any(s["phase"] in ("Failed", "Error") for s in got.values())
    refused = [j for s in got.values() for j in store.jobs_of_step(s["id"])
               if j["state"] == JobState.REFUSED]
    assert len(refused) == 3 and all("~held-" in j["name"] for j in refused)
    assert all(j["detail"].startswith("held back:") for j in refused)
    # the next cycle: room for everything; each held step goes out once, under its own name
    queue.room = 10
    service.submitter.submit_ready()
    got = steps()
    assert got["bad"]["phase"] == "Error"  # a mistake still fails the step at once
    assert 'unknown queue "nope"' in got["bad"]["reason"]
    assert sorted(queue.names) == sorted(f"hpcflow-{wf.id}-{got[f's{i}']['id']}-0"
                                         for i in range(4))
    assert len(set(queue.names)) == 4
    for i in range(4):
        live = [j for j in store.jobs_of_step(got[f"s{i}"]["id"])
                if j["state"] == JobState.SUBMITTED]
        assert len(live) == 1 and live[0]["name"] == f"hpcflow-{wf.id}-{got[f's{i}']['id']}-0"
    service.submitter.submit_ready()  # nothing is submitted twice
    assert len(queue.names) == 4
