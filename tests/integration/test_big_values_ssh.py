"""A large parameter between Slurm jobs over SSH: the daemon writes it into the remote step
directory as its parameter file (folders made over SFTP) and reads the producer's file back
over SFTP, checking its digest; it is stored once."""

import sqlite3
from pathlib import Path

from tests.conftest import integrity_ok, run_cli
from tests.integration.flows import steps, submit, wait
from tests.integration.test_slurm_ssh import remote_config

BIG = '''
from hpcflow import Step, Workflow, SlurmExecutor
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def make(n: int) -> {"blob": str}:
    return {"blob": "q" * n}

@OP.function
def size(blob: str) -> {"n": int, "ends": str}:
    return {"n": len(blob), "ends": blob[0] + blob[-1]}

wf = Workflow("big-over-ssh")
made = Step("make", PythonOPTemplate(make), parameters={"n": 500000},
            executor=SlurmExecutor(machine="remote", partition="debug"))
sized = Step("size", PythonOPTemplate(size), parameters={"blob": made.outputs.parameters["blob"]},
             executor=SlurmExecutor(machine="remote", partition="debug"))
wf.add(made)
wf.add(sized)
wf.submit()
'''


def test_a_large_parameter_between_jobs_over_ssh(tmp_path: Path, ssh_env: dict,
                                                 slurm_env: dict) -> None:
    home = tmp_path / "home"
    remote_config(home, ssh_env)
    wf_id = submit(tmp_path, home, BIG)
    try:
        assert wait(home, tmp_path, wf_id)["phase"] == "Succeeded"
        shown = steps(home, tmp_path, wf_id)
        assert shown["size"]["outputs"]["parameters"] == {"n": 500000, "ends": "qq"}
        assert shown["make"]["outputs"]["parameters"]["blob"]["elided"]["bytes"] == 500000
        conn = sqlite3.connect(home / "store.db")
        try:
            assert conn.execute("SELECT count(*), sum(bytes) FROM parameter_values"
                                ).fetchone() == (1, 500000)
        finally:
            conn.close()
        assert integrity_ok(home)
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
