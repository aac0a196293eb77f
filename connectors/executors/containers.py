"""The command that runs hpcflow's runner inside a step's image, for each container CLI.

Apptainer (and Singularity, which has the same form) runs the image as the user, with the
host's environment, binding the work root: ``apptainer exec --bind ROOT [options] IMAGE
python3 -m hpcflow.daemon.runner``. Docker and Podman (dflow's ``ContainerExecutor(docker=)``,
``podman=``) start a container: ``docker run --rm -v ROOT:ROOT -w JOB_DIR -e NAME... [options]
IMAGE python3 -m hpcflow.daemon.runner``, where each ``-e NAME`` hands on one variable the job
needs (the runner's path, its result keys) from the job's environment, never its value on the
command line. Docker runs as the user (``--user UID:GID``, read on the machine) so the files
it writes in the step directory are the user's; rootless Podman already maps them.
"""

from __future__ import annotations

import shlex

from hpcflow.config_file import MachineConfig
from hpcflow.connectors.executors.base import RESULT_KEYS_ENV
from hpcflow.connectors.executors.batch import container_image

RUNNER = ["-m", "hpcflow.daemon.runner"]
#: Variables a containerised job gets from its job script (besides those of the submission).
JOB_VARIABLES = ("PYTHONPATH", "PYTHONUNBUFFERED", "HPCFLOW_CONTAINER_IMAGE", RESULT_KEYS_ENV)
_AS_USER = 'exec "$0" run --user "$(id -u):$(id -g)" "$@"'


def engine_image(image: str) -> str:
    """An image reference as Docker and Podman take it (no ``docker://`` scheme).

    >>> engine_image("docker://python:3.11"), engine_image("python:3.11")
    ('python:3.11', 'python:3.11')
    """
    return image.removeprefix("docker://")


def container_runner(machine: MachineConfig, work_root: str, image: str, job_dir: str,
                     env_names: list[str]) -> tuple[list[str], list[str]]:
    """(the runner's command up to its arguments, job script lines to add before it).

    >>> from hpcflow.config_file import MachineConfig
    >>> m = MachineConfig("m", "shell", container="docker", container_kind="docker")
    >>> argv, lines = container_runner(m, "/w", "python:3.11", "/w/wf/s", ["S3_KEY"])
    >>> argv[:4], argv[4:12]
    (['sh', '-c', 'exec "$0" run --user "$(id -u):$(id -g)" "$@"', 'docker'], ['--rm', \
'-v', '/w:/w', '-w', '/w/wf/s', '-e', 'PYTHONPATH', '-e'])
    >>> argv[-4:], lines
    (['python:3.11', 'python3', '-m', 'hpcflow.daemon.runner'], \
['export HPCFLOW_CONTAINER_IMAGE=python:3.11'])
    """
    lines = [f"export HPCFLOW_CONTAINER_IMAGE={shlex.quote(image)}"]
    container = str(machine.container)
    if machine.container_kind not in ("docker", "podman"):
        return [container, "exec", "--bind", work_root, *machine.container_options,
                container_image(image), machine.container_python, *RUNNER], lines
    names = list(JOB_VARIABLES) + sorted(set(env_names) - set(JOB_VARIABLES))
    start = ["sh", "-c", _AS_USER, container] if machine.container_kind == "docker" \
        else [container, "run"]
    argv = [*start, "--rm", "-v", f"{work_root}:{work_root}", "-w", job_dir,
            *(arg for name in names for arg in ("-e", name)), *machine.container_options,
            engine_image(image), machine.container_python, *RUNNER]
    return argv, lines
