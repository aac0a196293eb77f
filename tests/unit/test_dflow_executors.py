"""dflow's executor classes as hpcflow builds them: the machine a step's spec describes, and
the one-line refusals of unknown arguments and of what exists only on Kubernetes."""

import subprocess
import sys
from pathlib import Path

import pytest

from hpcflow import (
    ContainerExecutor,
    DockerSecret,
    HookStep,
    HTTPOPTemplate,
    RemoteExecutor,
    Resource,
    Secret,
    ShellOPTemplate,
    SlurmJob,
    SlurmJobTemplate,
    SlurmRemoteExecutor,
    Step,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.io import OutputArtifact
from hpcflow.kubernetes_only import PVC

HELLO = ShellOPTemplate(name="hello", script="echo hi")


@pytest.mark.parametrize("make, words", [
    (lambda: SlurmRemoteExecutor(host="h", hostname="x"),
     "SlurmRemoteExecutor got unknown argument 'hostname': check the spelling"),
    (lambda: RemoteExecutor(host="h", queue_name="q"), "RemoteExecutor got unknown argument"),
    (lambda: ContainerExecutor(docker="docker", podman="podman"),
     "takes one of docker, singularity and podman, not docker and podman"),
    (lambda: ContainerExecutor(image="x"), "ContainerExecutor got unknown argument 'image'"),
    (lambda: SlurmJobTemplate(header="#SBATCH -N 1\nmodule load gcc"),
     "line 'module load gcc' is a shell command: the job runs on a machine of the config "
     "file, so put it in [machines.slurm]'s prepare"),
    (lambda: SlurmJobTemplate(docker_executable="docker", machine="hpc"),
     'set container = "..." in [machines.hpc]'),
    (lambda: SlurmRemoteExecutor(host="h", port="22"), "port number, not '22'"),
    (lambda: SlurmRemoteExecutor(host="h", workdir="/data/$(rm -rf ~)/{{pod.name}}"),
     "use a plain path"),
    (lambda: Secret(value="s"), "Secret(...) creates a Kubernetes secret"),
    (lambda: HookStep(HELLO, expression="workflow.status == 'Failed'"),
     "HookStep is an Argo lifecycle hook"),
    (lambda: HTTPOPTemplate(url="http://example.org"), "HTTPOPTemplate is run by Argo's"),
    (lambda: OutputArtifact(path="/tmp/x", name="x").pvc(),
     "output artifact 'x': .pvc() on a template's output is not supported: call it on a "
     "step's"),
    (lambda: Step("s", HELLO, use_resource=Resource()),
     "step 's': use_resource= applies a Kubernetes manifest"),
])
def test_one_line_refusals(make, words) -> None:
    with pytest.raises(WorkflowDefinitionError) as caught:
        make()
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_custom_executor_is_refused_at_submission(hpc_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "custom.py"
    script.write_text(
        "from hpcflow import Executor, ShellOPTemplate, Step, Workflow\n"
        "class Mine(Executor):\n"
        "    def render(self, template):\n"
        "        return template\n"
        "wf = Workflow('custom')\n"
        "wf.add(Step('s', ShellOPTemplate(name='t', script='echo'), executor=Mine()))\n"
        "wf.submit()\n")
    done = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "submit", str(script)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"hpcflow: {script} (line 7): Mine is a custom dflow Executor (it rewrites Argo "
        "templates with render()), which hpcflow cannot run: use SlurmRemoteExecutor, "
        "RemoteExecutor, ContainerExecutor, DispatcherExecutor or hpcflow's SlurmExecutor"], \
        done.stderr
    assert not (hpc_home / "store.db").exists() or "custom" not in \
        (hpc_home / "store.db").read_bytes().decode(errors="replace")


def test_slurm_remote_executor_spec(hpc_home: Path) -> None:
    """dflow's example arguments: the header's #SBATCH lines are directives (hpcflow's own
    output and name options left out), its shell lines run first; the workdir's root holds
    the step directories; the password is a reference; the same machine, the same name."""
    header = ("#!/bin/bash\n  #SBATCH -N 1\n#SBATCH -n 1\n#SBATCH -o slurm.out\n"
              "#SBATCH --job-name=mine\nmodule load gcc\n")
    executor = SlurmRemoteExecutor(
        host="1.2.3.4", port=31129, username="root", password="password", header=header,
        workdir="/data/dflow/workflows/{{workflow.name}}/{{pod.name}}",
        pvc=PVC("public", "x"), interval=10, action_retries=3)
    spec = executor.to_spec()
    assert spec["kind"] == "step_machine" and spec["scheduler"] == "slurm"
    assert spec["resources"] == {"extra_directives": ["-N 1", "-n 1"]}
    assert spec["prepare"] == ["module load gcc"]
    assert (spec["host"], spec["port"], spec["user"], spec["work_root"]) == \
        ("1.2.3.4", 31129, "root", "/data/dflow/workflows")
    assert "password" not in str(spec) and len(spec["secret"]) == 32
    assert spec["machine"].startswith("ssh-slurm-")
    again = SlurmRemoteExecutor(host="1.2.3.4", port=31129, username="root",
                                password="password", header=header,
                                workdir="/data/dflow/workflows/{{workflow.name}}/x").to_spec()
    assert again["machine"] == spec["machine"]
    other = SlurmRemoteExecutor(host="1.2.3.4", port=31129, username="root",
                                password="other", header=header).to_spec()
    assert other["machine"] != spec["machine"] and other["work_root"] == "~/dflow/workflows"


def test_remote_and_container_executors_specs(hpc_home: Path) -> None:
    remote = RemoteExecutor(host="h", username="u", private_key_file="~/.ssh/id_x",
                            remote_command="python3.11", docker_executable="docker",
                            image="dptechnology/dflow-extender", command="sh").to_spec()
    assert (remote["scheduler"], remote["python"], remote["container_kind"]) == \
        ("shell", "python3.11", "docker")
    assert remote["key_filename"] == str(Path("~/.ssh/id_x").expanduser())
    assert RemoteExecutor(host="h", remote_command=["bash"]).to_spec()["python"] is None
    assert ContainerExecutor().to_spec() is None  # nothing to do, as in dflow
    boxed = ContainerExecutor(podman="podman", image_pull_policy="Never").to_spec()
    assert (boxed["scheduler"], boxed["container_kind"], boxed["container_options"]) == \
        ("shell", "podman", ["--pull", "never"])
    assert "host" not in boxed


def test_slurm_job_template_and_slurm_job(hpc_home: Path) -> None:
    template = SlurmJobTemplate(header="#!/bin/sh\n#SBATCH --nodes=1",
                                node_selector={"kubernetes.io/hostname": "slurm-x-v100"})
    assert template.to_spec() == {"kind": "batch", "scheduler": "slurm", "machine": "slurm",
                                  "resources": {"extra_directives": ["--nodes=1"]}}
    step = Step("s", HELLO, use_resource=SlurmJob(header="#SBATCH -p debug", machine="hpc"))
    assert step.executor.to_spec()["machine"] == "hpc"
    assert step.executor.to_spec()["resources"] == {"extra_directives": ["-p debug"]}
    assert repr(DockerSecret("reg", "me", "pw")) == "DockerSecret(registry='reg', username='me')"
