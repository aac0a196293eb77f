"""The PBS and LSF modules on output in the tools' documented formats (``qsub``, ``qstat -f -x
-F json`` of OpenPBS 19+, ``bsub``, ``bjobs -o``): scripts, ids, states, reasons, what they
refuse, and that their command lines work through a shell as written."""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from hpcflow.config_file import parse_config
from hpcflow.connectors.executors.registry import make_scheduler
from hpcflow.connectors.schedulers.base import JobScript, SchedulerError
from hpcflow.connectors.schedulers.lsf import LSFScheduler
from hpcflow.connectors.schedulers.pbs import PBSScheduler
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.executors import LSFExecutor, PBSExecutor

PBS = PBSScheduler()
LSF = LSFScheduler()
STEP = "/scratch/wf-abcde/s-7"


def job(**resources) -> JobScript:
    return JobScript(name="hpcflow-wf-abcde-7-0", step_dir=STEP,
                     command=["/opt/py/bin/python", "-m", "hpcflow.daemon.runner", STEP],
                     prepare=["module load python"], resources=resources)


def fake_tool(tmp_path: Path, name: str, body: str) -> dict:
    """A PATH where ``name`` is a shell script (to run the modules' argv as written)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


# -- PBS ----------------------------------------------------------------------------------

def test_pbs_script_carries_the_resources_and_runs_in_the_step_directory():
    lines = PBS.render(job(queue="workq", account="proj1", walltime="1:00:00", ncpus=4,
                           mem="8gb", ngpus=1, place="excl",
                           extra_directives=["-l software=abaqus"])).splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("#PBS -N hpcflow-wf-abcde-7-0", f"#PBS -o {STEP}/log.txt", "#PBS -j oe",
                 "#PBS -q workq", "#PBS -A proj1", "#PBS -l walltime=1:00:00",
                 "#PBS -l place=excl", "#PBS -l select=1:ncpus=4:mem=8gb:ngpus=1",
                 "#PBS -l software=abaqus"):
        assert line in lines
    # PBS starts jobs in $HOME: the script changes directory before anything else runs
    assert lines.index(f"cd {STEP} || exit 1") < lines.index("module load python")
    assert max(i for i, line in enumerate(lines) if line.startswith("#PBS")) < \
        lines.index(f"cd {STEP} || exit 1")
    assert lines[-1] == f"exec /opt/py/bin/python -m hpcflow.daemon.runner {STEP}"


@pytest.mark.parametrize("resources, message", [
    ({"queue": "workq\n#PBS -u root"}, "resource queue="),
    ({"walltime": "1h"}, "not a PBS duration"),
    ({"mem": "8G"}, "not a PBS size"),
    ({"ncpus": 0}, "positive whole number"),
    ({"ncpus": "4; rm -rf ~"}, "resource ncpus="),
    ({"partition": "cpu"}, "unknown PBS resource 'partition'"),
    ({"extra_directives": ["-l a=1\n-l b=2"]}, "must be one non-empty line"),
])
def test_pbs_refuses_hostile_or_mistyped_resources(resources, message):
    with pytest.raises(SchedulerError, match=message):
        PBS.render(job(**resources))


def test_pbs_submit_answers():
    assert PBS.parse_submit("1234.pbs01\n") == "1234"
    assert PBS.parse_submit("1234.pbs01.example.org\n") == "1234"
    assert PBS.parse_submit("1234\n") == "1234"
    with pytest.raises(SchedulerError, match="not a job id"):
        PBS.parse_submit("qsub: Unknown queue\n")
    assert PBS.submit_argv("/s/job.sh") == ["qsub", "/s/job.sh"]
    assert PBS.cancel_argv(["12", "13"]) == ["qdel", "12", "13"]
    assert PBS.find_argv("hpcflow-a-1-0") == ["qselect", "-N", "hpcflow-a-1-0"]
    assert PBS.parse_find("12.pbs01\n\n13.pbs01\n") == ["12", "13"]


def _pbs_job(state: str, **extra) -> dict:
    job = {"Job_Name": "hpcflow-a-1-0", "Job_Owner": "alice@login1", "job_state": state,
           "queue": "workq", "server": "pbs01",
           "Resource_List": {"ncpus": 1, "nodect": 1, "place": "pack",
                             "select": "1:ncpus=1", "walltime": "00:10:00"},
           "Join_Path": "oe", "Keep_Files": "oed", "substate": 92}
    job.update(extra)
    return job


def used(walltime: str) -> dict:
    return {"resources_used": {"cpupercent": 0, "cput": "00:00:01", "mem": "4kb", "ncpus": 1,
                               "vmem": "12kb", "walltime": walltime}}


QSTAT = json.dumps({"timestamp": 1732550000, "pbs_version": "22.05.11",
                    "pbs_server": "pbs01", "Jobs": {
    "10.pbs01": _pbs_job("Q", substate=10),
    "11.pbs01": _pbs_job("R", substate=42, **used("00:00:05")),
    "12.pbs01": _pbs_job("E", substate=50),
    "13.pbs01": _pbs_job("H", substate=20),
    "14.pbs01": _pbs_job("F", Exit_status=0, **used("00:00:05")),
    "15.pbs01": _pbs_job("F", Exit_status=1, **used("00:00:05")),
    "16.pbs01": _pbs_job("F", Exit_status=-29, **used("00:10:01")),
    "17.pbs01": _pbs_job("F", Exit_status=271, **used("00:10:02")),
    "18.pbs01": _pbs_job("F", Exit_status=271, **used("00:00:40")),
    "19.pbs01": _pbs_job("F", substate=91),
    "20.pbs01": _pbs_job("F", Exit_status=-27, **used("00:01:00")),
    "21.pbs01": _pbs_job("F", Exit_status=-20),
    "22.pbs01": _pbs_job("M"),
    "23.pbs01": _pbs_job("S", substate=43),
}}, indent=4)


def test_pbs_states_and_reasons_from_qstat_json():
    polled = PBS.parse_poll(QSTAT)
    assert {i: polled[i].state for i in polled} == {
        "10": "queued", "11": "running", "12": "running", "13": "queued", "14": "done",
        "15": "done", "16": "done", "17": "done", "18": "done", "19": "done", "20": "done",
        "21": "done", "22": "done", "23": "running"}
    assert polled["14"].reason is None and polled["14"].exit_code == 0
    assert polled["15"].reason is None and polled["15"].exit_code == 1  # the runner's word
    for walltime in ("16", "17"):  # -29 (OpenPBS 20+) or 271 at the limit (older versions)
        assert polled[walltime].timed_out, walltime
        assert "reached its walltime" in (polled[walltime].reason or "")
    assert not polled["18"].timed_out  # 271 long before the limit: qdel
    assert "killed by signal 15 outside hpcflow" in (polled["18"].reason or "")
    assert "deleted before it ran" in (polled["19"].reason or "")
    assert "ran out of memory" in (polled["20"].reason or "")
    assert polled["21"].infrastructure and not polled["20"].infrastructure
    assert "moved" in (polled["22"].reason or "")


def test_pbs_qstat_answers_without_jobs_and_broken_answers():
    assert PBS.parse_poll("") == {}
    assert PBS.parse_poll('{"timestamp": 1, "pbs_version": "22.05.11", '
                          '"pbs_server": "pbs01"}') == {}
    with pytest.raises(SchedulerError, match="not JSON"):
        PBS.parse_poll('{"Jobs": {"1.pbs01": {"comment": "half')


def test_pbs_poll_is_one_qstat_that_forgives_only_unknown_ids(tmp_path: Path):
    argv = PBS.poll_argv(["12", "adopted", "13"])
    assert argv[-8:] == ["qstat", "-f", "-x", "-F", "json", "-t", "12", "13"]
    assert PBS.poll_argv(["adopted"]) == ["true"]
    one_job = json.dumps({"timestamp": 1, "pbs_version": "22.05.11", "pbs_server": "pbs01",
                          "Jobs": {"12.pbs01": _pbs_job("R")}})
    env = fake_tool(tmp_path, "qstat", f"echo '{one_job}'\n"
                    "echo 'qstat: Unknown Job Id 13.pbs01' >&2\nexit 153\n")
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(PBS.parse_poll(done.stdout)) == {"12"}
    env = fake_tool(tmp_path, "qstat", "echo 'qstat: cannot connect to server pbs01 "
                    "(errno=15010)' >&2\nexit 255\n")
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert done.returncode == 255 and "cannot connect" in done.stderr


def array_job(throttle: int | None = None, size: int = 3) -> JobScript:
    return JobScript(name="hpcflow-wf-abcde-7-0-array", step_dir="/scratch/wf-abcde/arrays/a",
                     command=["/opt/py/bin/python", "-m", "hpcflow.daemon.runner", "."],
                     prepare=["module load python"],
                     elements=tuple(f"/scratch/wf-abcde/s-{i}" for i in range(1, size + 1)),
                     throttle=throttle)


def test_pbs_array_script_runs_each_subjob_in_its_own_step_directory():
    lines = PBS.render(array_job(throttle=2)).splitlines()
    assert "#PBS -J 1-3%2" in lines  # %K: max_run_subjobs (OpenPBS 20+)
    assert "#PBS -o /scratch/wf-abcde/arrays/a/log-^array_index^.txt" in lines
    assert "#PBS -J 1-3" in PBS.render(array_job()).splitlines()
    assert lines[-4:] == [
        "HPCFLOW_ELEMENTS=(/scratch/wf-abcde/s-1 /scratch/wf-abcde/s-2 /scratch/wf-abcde/s-3)",
        'cd -- "${HPCFLOW_ELEMENTS[PBS_ARRAY_INDEX - 1]}" || exit 1', "exec >>log.txt 2>&1",
        "exec /opt/py/bin/python -m hpcflow.daemon.runner ."]
    # PBS refuses a one-subjob array: a lone element gets an empty second subjob
    lone = PBS.render(array_job(size=1)).splitlines()
    assert "#PBS -J 1-2" in lone
    assert lone.index('[ "$PBS_ARRAY_INDEX" -eq 1 ] || exit 0') < lone.index(
        "HPCFLOW_ELEMENTS=(/scratch/wf-abcde/s-1)")


def test_pbs_array_submit_find_and_cancel_name_subjobs():
    assert PBS.parse_submit("4242[].pbs01\n") == "4242[]"
    assert PBS.parse_submit("4242[].pbs01.example.org\n") == "4242[]"
    assert [PBS.element_id("4242[]", i) for i in (1, 2, 12)] == ["4242[1]", "4242[2]",
                                                                  "4242[12]"]
    # qselect lists an array, never its subjobs, as SEQ[].SERVER
    assert PBS.parse_find("4242[].pbs01\n4243.pbs01\n") == ["4242[]", "4243"]
    assert PBS.cancel_argv(["4242[2]", "4242[3]"]) == ["qdel", "4242[2]", "4242[3]"]


QSTAT_ARRAY = json.dumps({"timestamp": 1732550000, "pbs_version": "22.05.11",
                          "pbs_server": "pbs01", "Jobs": {
    "30[].pbs01": _pbs_job("B", array="True", array_indices_submitted="1-6%2",
                           max_run_subjobs=2),
    "30[1].pbs01": _pbs_job("X", Exit_status=0, array_index=1, **used("00:00:05")),
    "30[2].pbs01": _pbs_job("X", Exit_status=1, array_index=2, **used("00:00:05")),
    "30[3].pbs01": _pbs_job("X", Exit_status=-29, array_index=3, **used("00:10:01")),
    "30[4].pbs01": _pbs_job("R", array_index=4, **used("00:00:05")),
    "30[5].pbs01": _pbs_job("Q", array_index=5,
                            comment="Number of concurrent running subjobs limit reached"),
    "30[6].pbs01": _pbs_job("X", array_index=6),
    "31.pbs01": _pbs_job("R"),
}}, indent=4)


def test_pbs_poll_asks_once_per_array_and_reads_each_subjob():
    argv = PBS.poll_argv(["30[1]", "30[4]", "31", "30[5]", "adopted", "32[]"])
    assert argv[-9:] == ["qstat", "-f", "-x", "-F", "json", "-t", "30[]", "31", "32[]"]
    polled = PBS.parse_poll(QSTAT_ARRAY)
    assert {i: (polled[i].state, polled[i].exit_code) for i in polled if "[" in i} == {
        "30[]": ("running", None), "30[1]": ("done", 0), "30[2]": ("done", 1),
        "30[3]": ("done", -29), "30[4]": ("running", None), "30[5]": ("queued", None),
        "30[6]": ("done", None)}
    assert polled["30[3]"].timed_out and "walltime" in (polled["30[3]"].reason or "")
    assert polled["30[5]"].waiting_for == "Number of concurrent running subjobs limit reached"
    assert "deleted before it ran" in (polled["30[6]"].reason or "")  # qdel'd while queued
    assert polled["31"].state == "running"


# -- LSF ----------------------------------------------------------------------------------

def test_lsf_script_carries_the_resources_and_keeps_the_job_output_apart():
    lines = LSF.render(job(queue="normal", project="proj1", runlimit="1:30", ntasks=4,
                           mem="8GB", gpus=1, exclusive=True,
                           extra_directives=['-R "span[hosts=1]"'])).splitlines()
    for line in ("#BSUB -J hpcflow-wf-abcde-7-0", f"#BSUB -cwd {STEP}", "#BSUB -q normal",
                 "#BSUB -P proj1", "#BSUB -W 1:30", "#BSUB -n 4", "#BSUB -M 8GB",
                 "#BSUB -gpu num=1", "#BSUB -x", '#BSUB -R "span[hosts=1]"',
                 f"#BSUB -o {STEP}/lsf-output.txt"):
        assert line in lines
    redirect = lines.index(f"exec >>{STEP}/log.txt 2>&1")
    assert redirect < lines.index("module load python")
    assert lines[-1] == f"exec /opt/py/bin/python -m hpcflow.daemon.runner {STEP}"


@pytest.mark.parametrize("resources, message", [
    ({"queue": "normal\n#BSUB -u root"}, "resource queue="),
    ({"runlimit": "1:00:00"}, "not an LSF run limit"),
    ({"mem": "lots"}, "not an LSF memory limit"),
    ({"ntasks": "-1"}, "positive whole number"),
    ({"walltime": "1:00"}, "unknown LSF resource 'walltime'"),
])
def test_lsf_refuses_hostile_or_mistyped_resources(resources, message):
    with pytest.raises(SchedulerError, match=message):
        LSF.render(job(**resources))


def test_lsf_submits_the_script_on_stdin_whatever_its_path(tmp_path: Path):
    folder = tmp_path / "a dir; $(touch pwned) 'q'"
    folder.mkdir()
    script = folder / "job.sh"
    script.write_text("#BSUB -J x\necho hi\n")
    env = fake_tool(tmp_path, "bsub", 'test $# -eq 0 || exit 9\ncat >/dev/null\n'
                    "echo 'Job <4242> is submitted to default queue <normal>.'\n")
    done = subprocess.run(LSF.submit_argv(str(script)), env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert LSF.parse_submit(done.stdout) == "4242"
    assert not (tmp_path / "pwned").exists()
    assert LSF.parse_submit("Job <77> is submitted to queue <short>.\n") == "77"
    with pytest.raises(SchedulerError, match="not a job id"):
        LSF.parse_submit("normal: No such queue. Job not submitted.\n")


BJOBS = """\
10|PEND|-|-|hpcflow-a-1-0
11|RUN|-|-|hpcflow-a-2-0
12|PSUSP|-|-|hpcflow-a-3-0
13|USUSP|-|-|hpcflow-a-4-0
14|UNKWN|-|-|hpcflow-a-5-0
15|DONE|-|-|hpcflow-a-6-0
16|EXIT|1|-|hpcflow-a-7-0
17|EXIT|140|TERM_RUNLIMIT: job killed after reaching LSF run time limit|hpcflow-a-8-0
18|EXIT|130|TERM_OWNER: job killed by owner|hpcflow-a-9-0
19|EXIT|137|TERM_MEMLIMIT: job killed after reaching LSF memory usage limit|hpcflow-a-10-0
20|EXIT|143|TERM_PREEMPT: job killed after preemption|hpcflow-a-11-0
21|EXIT|140|-|hpcflow-a-12-0
22|EXIT|143|TERM_ADMIN: job killed by root or LSF administrator|hpcflow-a-13-0
23|ZOMBI|-|-|hpcflow-a-14-0
Job <24> is not found
"""


def test_lsf_states_and_reasons_from_bjobs():
    polled = LSF.parse_poll(BJOBS)
    assert {i: polled[i].state for i in polled} == {
        "10": "queued", "11": "running", "12": "queued", "13": "running", "14": "running",
        "15": "done", "16": "done", "17": "done", "18": "done", "19": "done", "20": "done",
        "21": "done", "22": "done", "23": "running"}
    assert polled["15"].reason is None and polled["15"].exit_code is None
    assert polled["16"].reason is None and polled["16"].exit_code == 1
    assert polled["17"].timed_out and "run limit (LSF TERM_RUNLIMIT)" in (polled["17"].reason
                                                                           or "")
    assert polled["21"].timed_out  # exit code 140 without a reason
    for killed in ("18", "22"):
        assert "killed outside hpcflow" in (polled[killed].reason or "")
    assert "ran out of memory" in (polled["19"].reason or "")
    assert polled["20"].infrastructure and not polled["19"].infrastructure


def test_lsf_poll_and_find_forgive_only_unknown_jobs(tmp_path: Path):
    argv = LSF.poll_argv(["12", "adopted"])
    assert argv[-6:] == ["bjobs", "-a", "-noheader", "-o",
                         "jobid stat exit_code exit_reason job_name jobindex delimiter='|'",
                         "12"]
    env = fake_tool(tmp_path, "bjobs", "echo '12|RUN|-|-|n'\n"
                    "echo 'Job <13> is not found' >&2\nexit 255\n")
    done = subprocess.run(LSF.poll_argv(["12", "13"]), env=env, capture_output=True, text=True)
    assert done.returncode == 0 and set(LSF.parse_poll(done.stdout)) == {"12"}
    env = fake_tool(tmp_path, "bjobs", "echo 'LSF is down. Please wait ...' >&2\nexit 255\n")
    done = subprocess.run(LSF.poll_argv(["12"]), env=env, capture_output=True, text=True)
    assert done.returncode == 255
    env = fake_tool(tmp_path, "bjobs", "echo 'Job <hpcflow-a-1-0> is not found' >&2\n"
                    "exit 255\n")
    done = subprocess.run(LSF.find_argv("hpcflow-a-1-0"), env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0 and LSF.parse_find(done.stdout) == []
    assert LSF.parse_find("31\n32\n") == ["31", "32"]
    assert LSF.cancel_argv(["31"]) == ["bkill", "31"]


def test_lsf_array_script_names_the_array_and_keeps_each_element_in_its_own_log():
    lines = LSF.render(array_job(throttle=2)).splitlines()
    assert '#BSUB -J "hpcflow-wf-abcde-7-0-array[1-3]%2"' in lines
    assert '#BSUB -J "hpcflow-wf-abcde-7-0-array[1-3]"' in LSF.render(array_job()).splitlines()
    assert "#BSUB -o /scratch/wf-abcde/arrays/a/lsf-output-%I.txt" in lines
    # before it moves into its step directory an element writes to the array's
    # log-INDEX.txt, never to a log.txt that every element shares
    first = lines.index('exec >>/scratch/wf-abcde/arrays/a/log-"$LSB_JOBINDEX".txt 2>&1')
    assert first < lines.index("module load python") < lines.index(
        'cd -- "${HPCFLOW_ELEMENTS[LSB_JOBINDEX - 1]}" || exit 1') < lines.index(
        "exec >>log.txt 2>&1")
    assert not any("arrays/a/log.txt" in line for line in lines)
    with pytest.raises(SchedulerError, match="job name"):
        LSF.render(JobScript("bad name", "/s", ["x"], elements=("/s/1", "/s/2")))


def test_lsf_array_script_as_bash_runs_it(tmp_path: Path):
    """The rendered script, run by bash as LSF would run element 2: its prepare output in the
    array's log-2.txt, the command's in element 2's own log.txt."""
    dirs = [tmp_path / f"s-{i}" for i in (1, 2)]
    for d in dirs:
        d.mkdir()
    (tmp_path / "array").mkdir()
    script = LSF.render(JobScript("a-array", str(tmp_path / "array"), ["sh", "-c", "echo ran"],
                                  prepare=["echo prepared"],
                                  elements=tuple(str(d) for d in dirs)))
    done = subprocess.run(["bash", "-c", script], env=dict(os.environ, LSB_JOBINDEX="2"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "array" / "log-2.txt").read_text() == "prepared\n"
    assert (dirs[1] / "log.txt").read_text() == "ran\n"
    assert not (dirs[0] / "log.txt").exists() and not (tmp_path / "array" / "log.txt").exists()


def test_lsf_array_poll_tells_elements_apart_by_jobindex():
    assert LSF.element_id("77", 3) == "77[3]"
    argv = LSF.poll_argv(["77[1]", "77[2]", "12", "adopted", "78[5]"])
    assert argv[-3:] == ["77", "12", "78"]
    # bjobs -o "... jobindex": a plain job shows 0 (or -); with LSB_BJOBS_DISPLAY_ENH=Y the
    # jobid of an element is already ID[index]
    polled = LSF.parse_poll("77|DONE|-|-|a-array[1]|1\n"
                            "77|EXIT|1|-|a-array[2]|2\n"
                            "77|EXIT|140|TERM_RUNLIMIT: job killed after reaching LSF run time "
                            "limit|a-array[3]|3\n"
                            "77|PEND|-|-|a-array[4]|4\n"
                            "78[5]|RUN|-|-|b-array[5]|5\n"
                            "12|RUN|-|-|hpcflow-wf-1-0|0\n13|PEND|-|-|hpcflow-wf-2-0|-\n")
    assert {i: (v.state, v.exit_code) for i, v in polled.items()} == {
        "77[1]": ("done", None), "77[2]": ("done", 1), "77[3]": ("done", 140),
        "77[4]": ("queued", None), "78[5]": ("running", None), "12": ("running", None),
        "13": ("queued", None)}
    assert polled["77[3]"].timed_out
    # find: an array is a line per element, all with the array's id
    assert LSF.parse_find("77\n77\n77\n") == ["77"]
    assert LSF.parse_find("77[1]\n77[2]\n") == ["77"]
    assert LSF.cancel_argv(["77[2]", "77[4]"]) == ["bkill", "77[2]", "77[4]"]


def test_pbs_and_lsf_machines_take_array_size():
    config = parse_config({"machines": {
        "p": {"scheduler": "pbs", "array_size": 50, "array_throttle": 5},
        "l": {"scheduler": "lsf", "array_size": 50}}})
    assert config.machines["p"].grouping == {"array_size": 50, "array_throttle": 5}
    assert config.machines["l"].grouping == {"array_size": 50}
    assert PBSExecutor(array_size=4).resources["array_size"] == 4


# -- SDK, config, registry ----------------------------------------------------------------

def test_the_sdk_executors_check_their_resources():
    spec = PBSExecutor(machine="hpc", walltime="2:00:00", ncpus=4, mem=None,
                       extra_directives=["-l place=excl"]).to_spec()
    assert spec == {"kind": "batch", "scheduler": "pbs", "machine": "hpc",
                    "resources": {"walltime": "2:00:00", "ncpus": 4,
                                  "extra_directives": ["-l place=excl"]}}
    assert LSFExecutor(runlimit=30).to_spec() == {
        "kind": "batch", "scheduler": "lsf", "machine": "lsf",
        "resources": {"runlimit": 30}}
    with pytest.raises(WorkflowDefinitionError, match="PBSExecutor has no resource 'time'"):
        PBSExecutor(time="1:00:00")
    with pytest.raises(WorkflowDefinitionError, match="LSFExecutor has no resource 'walltime'"):
        LSFExecutor(walltime="1:00:00")
    import hpcflow

    assert hpcflow.PBSExecutor is PBSExecutor and hpcflow.LSFExecutor is LSFExecutor


def test_pbs_and_lsf_machines_exist_by_default_and_have_their_modules():
    config = parse_config({})
    assert config.machines["pbs"].scheduler == "pbs"
    assert config.machines["lsf"].scheduler == "lsf"
    assert make_scheduler("pbs").name == "pbs" and make_scheduler("lsf").name == "lsf"
