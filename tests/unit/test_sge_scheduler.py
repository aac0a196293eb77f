"""The Grid Engine module on output recorded from the one-node Son of Grid Engine 8.1.9 of
tests/services (files in tests/unit/data/sge): scripts, ids, states, accounting, and what it
refuses."""

from pathlib import Path

import pytest

from hpcflow.connectors.schedulers.base import JobScript, SchedulerError
from hpcflow.connectors.schedulers.sge import SGEScheduler
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.executors import SGEExecutor

SGE = SGEScheduler()
DATA = Path(__file__).parent / "data" / "sge"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def job(**resources) -> JobScript:
    return JobScript(name="hpcflow-wf-abcde-7-0", step_dir="/scratch/wf-abcde/s-7",
                     command=["/opt/py/bin/python", "-m", "hpcflow.daemon.runner",
                              "/scratch/wf-abcde/s-7"],
                     prepare=["module load python"], resources=resources)


def test_the_job_script_carries_the_resources_and_runs_the_runner():
    text = SGE.render(job(queue="all.q", time="1:00:00", mem="4G", pe="smp", slots=4,
                          account="acct", project="proj", extra_directives=["-l gpu=1"]))
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("#$ -N hpcflow-wf-abcde-7-0", "#$ -o /scratch/wf-abcde/s-7/log.txt", "#$ -j y",
                 "#$ -wd /scratch/wf-abcde/s-7", "#$ -S /bin/bash", "#$ -q all.q",
                 "#$ -l h_rt=1:00:00", "#$ -l h_vmem=4G", "#$ -pe smp 4", "#$ -A acct",
                 "#$ -P proj", "#$ -l gpu=1", "module load python"):
        assert line in lines
    assert lines[-1] == ("exec /opt/py/bin/python -m hpcflow.daemon.runner "
                         "/scratch/wf-abcde/s-7")
    assert lines.index("module load python") < len(lines) - 1
    assert max(i for i, line in enumerate(lines) if line.startswith("#$")) < \
        lines.index("module load python")


@pytest.mark.parametrize("resources, expected", [
    ({}, []),
    ({"time": 300}, ["#$ -l h_rt=300"]),
    ({"time": "2-12:30:00"}, ["#$ -l h_rt=60:30:00"]),  # Slurm's days-hours form
    ({"time": "1-0"}, ["#$ -l h_rt=24:00:00"]),
    ({"pe": "smp"}, ["#$ -pe smp 1"]),
    ({"pe": "mpi", "cpus_per_task": 8}, ["#$ -pe mpi 8"]),
    ({"cpus_per_task": 1}, []),  # one slot is what every job has
    ({"mem": None, "queue": None}, []),
])
def test_resources_become_directives(resources, expected):
    lines = SGE.render(job(**resources)).splitlines()
    assert [line for line in lines[6:] if line.startswith("#$")] == expected


@pytest.mark.parametrize("resources, message", [
    ({"queue": "all.q\n#$ -u root"}, "resource queue="),
    ({"time": "1:00; rm -rf ~"}, "resource time="),
    ({"time": "1h"}, "not a Grid Engine time"),
    ({"account": ""}, "resource account="),
    ({"partition": "debug"}, "unknown Grid Engine resource 'partition'"),
    ({"slots": 4}, "4 slots need a parallel environment"),
    ({"pe": "smp", "slots": 2, "cpus_per_task": 4}, "slots and cpus_per_task differ"),
    ({"pe": "smp", "slots": "4; id"}, "must be a positive whole number"),
    ({"pe": "smp", "slots": True}, "must be a positive whole number"),
    ({"extra_directives": ["-l a\n-l b"]}, "must be one non-empty line"),
])
def test_hostile_or_mistyped_resources_are_refused(resources, message):
    with pytest.raises(SchedulerError, match=message):
        SGE.render(job(**resources))


def test_paths_and_names_grid_engine_cannot_take_are_refused():
    with pytest.raises(SchedulerError, match="path with ':'"):
        SGE.render(JobScript(name="hpcflow-a-1-0", step_dir="/scratch/a:b", command=["true"]))
    with pytest.raises(SchedulerError, match="not a Grid Engine job name"):
        SGE.render(JobScript(name="1abc", step_dir="/scratch/a", command=["true"]))


def test_job_ids_from_qsub():
    assert SGE.submit_argv("/s/job.sh") == ["qsub", "-terse", "/s/job.sh"]
    assert SGE.parse_submit("42\n") == "42"
    assert SGE.parse_submit("6.1-5:1\n") == "6"  # an array job
    assert SGE.parse_submit('Your job 43 ("hpcflow-a-1-0") has been submitted\n') == "43"
    with pytest.raises(SchedulerError, match="not a job id"):
        SGE.parse_submit('Unable to run job: Job was rejected because job requests unknown '
                         'queue "nosuch.q"\nExiting.\n')


def test_states_from_one_qstat():
    """Recorded with jobs running (18), deleted while running (19, qdel: dr), suspended (20,
    qmod -sj: s), held in error (21, a -wd that does not exist: Eqw), held (22, hqw), and an
    array (23) with task 1 running and tasks 2-6 pending."""
    # one call, whatever the ids; -g d: an array's elements one per entry
    assert SGE.poll_argv(["1", "2"]) == ["qstat", "-xml", "-g", "d"]
    polled = SGE.parse_poll(recorded("qstat-states.xml"))
    assert {i: (s.state, s.raw) for i, s in polled.items()} == {
        "18": ("running", "r"), "19": ("done", "dr"), "20": ("queued", "s"),
        "21": ("done", "Eqw"), "22": ("queued", "hqw"), "23": ("running", "r"),
        "23.1": ("running", "r")}
    assert "deleted outside hpcflow" in (polled["19"].reason or "")
    assert "qdel" in (polled["19"].reason or "")
    eqw = polled["21"].reason or ""
    assert "error state (Eqw)" in eqw and "hpcflow removed the job (`qdel 21`)" in eqw
    assert polled["21"].lingers and not polled["22"].lingers
    assert not polled["21"].infrastructure and not polled["21"].timed_out
    assert SGE.parse_poll(recorded("qstat-empty.xml")) == {}
    with pytest.raises(SchedulerError, match="not XML"):
        SGE.parse_poll("error: commlib error: got select error (Connection refused)\n")


@pytest.mark.parametrize("raw, state", [
    ("qw", "queued"), ("hqw", "queued"), ("hRwq", "queued"), ("Rq", "queued"),
    ("t", "running"), ("r", "running"), ("Rr", "running"), ("Rt", "running"),
    ("hr", "running"), ("s", "queued"), ("S", "queued"), ("T", "queued"),
    ("Eqw", "done"), ("Ehqw", "done"), ("dr", "done"), ("dt", "done"), ("dRr", "done"),
])
def test_every_state_letter_combination(raw, state):
    xml = (f"<job_info><queue_info><job_list><JB_job_number>5</JB_job_number><state>{raw}"
           "</state></job_list></queue_info></job_info>")
    assert SGE.parse_poll(xml)["5"].state == state


def test_accounting_from_qacct():
    """Recorded: 1 ended well, 2 exited 3, 3 hit -l h_rt=0:0:5 (sleep 60), 4 was qdel'd while
    running, 5 could not enter its -wd; 99 is unknown (qacct printed nothing for it)."""
    argv = SGE.accounting_argv(["1", "99"])
    assert argv is not None and argv[:2] == ["sh", "-c"] and argv[-2:] == ["1", "99"]
    ended = SGE.parse_accounting(recorded("qacct-ok-exit3-hrt-qdel-failed28.txt"))
    assert sorted(ended) == ["1", "2", "3", "4", "5"]
    assert all(s.state == "done" for s in ended.values())
    assert (ended["1"].exit_code, ended["1"].reason) == (0, None)
    assert ended["2"].exit_code == 3 and "before hpcflow's runner" in (ended["2"].reason or "")
    hrt = ended["3"]
    assert hrt.timed_out and hrt.exit_code == 137 and not hrt.infrastructure
    assert "time limit (h_rt=5; qacct: failed 37 : qmaster enforced h_rt" in (hrt.reason or "")
    assert "ask for more with time=" in (hrt.reason or "")
    killed = ended["4"]
    assert not killed.timed_out and "qdel" in (killed.reason or "")
    assert "failed 100 : assumedly after job" in (killed.reason or "")
    assert "changing into working directory" in (ended["5"].reason or "")
    assert SGE.parse_accounting("") == {}


def test_an_array_job_in_accounting_is_one_job_and_each_element_its_own():
    ended = SGE.parse_accounting(recorded("qacct-array.txt"))
    assert ended["6"].reason is None
    assert sorted(ended) == ["6", *sorted(i for i in ended if i.startswith("6."))]
    assert all(ended[i].native_id == i for i in ended)
    failed_task = recorded("qacct-array.txt").replace("exit_status  0", "exit_status  2", 1)
    assert SGE.parse_accounting(failed_task)["6"].exit_code == 2  # a failed task wins


@pytest.mark.parametrize("failed, exit_status, category, wallclock, timed_out, words", [
    # the execution daemon enforcing h_rt kills with SIGKILL: exit 137 past the limit
    ("0", "137", "-l h_rt=60", "61s", True, "time limit (h_rt=60"),
    ("100 : assumedly after job", "137", "-l h_rt=600", "5s", False, "qdel"),
    ("37  : qmaster enforced h_rt, h_cpu, or h_vmem limit", "137", "NONE", "3600s", True,
     "time limit (h_rt;"),  # the queue's own h_rt
    ("37  : qmaster enforced h_rt, h_cpu, or h_vmem limit", "137",
     "-l h_rt=3600,h_vmem=1G", "20s", False, "memory limit (h_vmem=1G"),
    ("0", "143", "NONE", "5s", False, "killed by signal 15"),
    ("1   : assumedly before job", "0", "NONE", "0s", False, "could not run the job"),
])
def test_how_a_job_ended_in_words(failed, exit_status, category, wallclock, timed_out, words):
    record = (f"==============================================================\n"
              f"jobnumber    77\ntaskid       undefined\nfailed       {failed}\n"
              f"exit_status  {exit_status}\nru_wallclock {wallclock}\ncategory     {category}\n")
    state = SGE.parse_accounting(record)["77"]
    assert state.timed_out is timed_out
    assert words in (state.reason or ""), state.reason
    assert state.infrastructure is failed.startswith("1 ")


def test_find_by_name_and_cancel():
    assert SGE.find_argv("hpcflow-twin-3-0") == ["qstat", "-j", "hpcflow-twin-3-0", "-xml"]
    assert SGE.parse_find(recorded("qstat-j-found-two.xml")) == ["24", "25"]
    assert SGE.parse_find(recorded("qstat-j-none.xml")) == []
    with pytest.raises(SchedulerError):
        SGE.find_argv("hpcflow-*")  # a pattern would find other jobs
    assert SGE.cancel_argv(["3", "4"]) == ["qdel", "3", "4"]


def test_the_sdk_executor_checks_its_resources():
    spec = SGEExecutor(machine="hpc", queue="all.q", time="2:00:00", mem=None,
                       extra_directives=["-l gpu=1"]).to_spec()
    assert spec == {"kind": "batch", "scheduler": "sge", "machine": "hpc",
                    "resources": {"queue": "all.q", "time": "2:00:00",
                                  "extra_directives": ["-l gpu=1"]}}
    assert SGEExecutor().to_spec()["machine"] == "sge"
    with pytest.raises(WorkflowDefinitionError, match="no resource 'partition'"):
        SGEExecutor(partition="debug")


def test_a_machine_called_sge_exists_without_any_config():
    from hpcflow.config_file import parse_config
    from hpcflow.connectors.executors.registry import make_scheduler

    machine = parse_config({}).machines["sge"]
    assert machine.scheduler == "sge" and machine.resources == {}
    assert make_scheduler("sge").name == "sge"


def test_an_array_job_s_elements_are_jobs_of_their_own():
    """Recorded with ``qstat -xml -g d`` (Son of Grid Engine 8.1.9): array 334 of 4
    elements with ``-tc 2``, elements 1-2 running and 3-4 waiting."""
    polled = SGE.parse_poll(recorded("qstat-array-elements.xml"))
    assert {i: s.state for i, s in polled.items()} == {
        "334": "running", "334.1": "running", "334.2": "running", "334.3": "queued",
        "334.4": "queued"}
    assert SGE.element_id("334", 3) == "334.3"
    script = SGE.render(JobScript("hpcflow-wf-1-0-array", "/w/arrays/a", ["/py", "-m", "r", "."],
                                  elements=("/w/s1", "/w/s2", "/w/s3"), throttle=2))
    assert "#$ -t 1-3\n#$ -tc 2\n" in script and "#$ -o /w/arrays/a/log-$TASK_ID.txt" in script
    assert 'HPCFLOW_ELEMENTS=(/w/s1 /w/s2 /w/s3)\ncd -- "${HPCFLOW_ELEMENTS[SGE_TASK_ID - 1]}"' \
        in script
    # an element's accounting is `qacct -j 334 -t 3`; its record is keyed by the element
    loop = SGE.accounting_argv(["334.3", "335"])
    assert loop[:2] == ["sh", "-c"] and '-t "${id#*.}"' in loop[2] and loop[-2:] == ["334.3", "335"]
    ended = SGE.parse_accounting("jobnumber    334\ntaskid       3\nfailed       0\n"
                                 "exit_status  0\n")
    assert ended["334.3"].native_id == "334.3" and ended["334.3"].state == "done"
