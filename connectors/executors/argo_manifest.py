"""The Argo Workflow that runs one step (or a pack of steps) of hpcflow, as a dict (pure).

Each step is one pod of the step's image. Its files reach it as S3 input artifacts, through
the bucket of ``[storage]`` that both the daemon and the cluster reach:

- ``job``: a tarball of the step directory (``step.json``, the OP, input values and input
  artifacts in ``.relay/``), unpacked by Argo at the step's directory;
- ``runner``: hpcflow's runner bundle (a zip put on ``PYTHONPATH``), as shipped to an SSH
  machine: the image needs only a Python of the daemon's minor version and the OP's imports.

The pod runs the runner in the step's directory (its log also goes to ``log.txt``) and Argo
saves ``result.json``, ``log.txt`` and the outputs the runner left in ``.relay/`` as output
artifacts, which the daemon reads back and carries into the workflow's storage. The pod
needs no S3 client and no key: Argo's executor moves the artifacts with the keys of the
Kubernetes Secret ``artifact_secret``.

Names follow Kubernetes' rules (lowercase DNS labels); a name that had to change gets a
short digest of the original, so different steps never share one.

>>> argo_name("hpcflow-Fit_Run-12-0")
'hpcflow-fit-run-12-0-643a6c'
>>> argo_name("hpcflow-fit-12-0")
'hpcflow-fit-12-0'
>>> quantities({"cpu": 2, "memory": "4Gi", "gpus": 1})["limits"]
{'cpu': '2', 'memory': '4Gi', 'nvidia.com/gpu': '1'}
>>> quantities({"cpu": "500m", "limits": {"cpu": "1"}})
{'requests': {'cpu': '500m'}, 'limits': {'cpu': '1'}}
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any

from hpcflow.connectors.executors.base import RESULT_FILE, RESULT_KEYS_FILE_ENV, JobSpec
from hpcflow.connectors.executors.relay import RELAY_DIR

API_VERSION = "argoproj.io/v1alpha1"
#: The label that marks hpcflow's Workflows (its value: which home submitted them), so one
#: list call per poll finds them all and nothing else.
HOME_LABEL = "hpcflow.io/home"
WORKFLOW_LABEL = "hpcflow.io/workflow"
#: Where the runner's log goes in the step's directory (and the pod's own log).
LOG_FILE = "log.txt"
#: The runner's private files in the step directory: its bundle, the result keys.
PRIVATE_DIR = ".hpcflow"
KEYS_FILE = f"{PRIVATE_DIR}/result-keys"
#: The runner bundle's directory in the pod, beside the workflows' (``/hpcflow/.runner``).
RUNNER_DIR = ".runner"
#: Exchange objects of one step, under ``argo/...`` in the bucket.
JOB_OBJECT, RESULT_OBJECT, LOG_OBJECT, OUTPUTS_OBJECT = (
    "job.tgz", "result.json", "log.txt", "relay.tgz")
#: The exit code of a shell that cannot find the command (the image has no such Python).
EXIT_NOT_FOUND = 127


@dataclass(frozen=True)
class S3Location:
    """The bucket both sides reach, as the pods' Argo executor is told to reach it."""

    bucket: str
    endpoint: str
    insecure: bool
    secret: str
    access_key: str = "accesskey"
    secret_key: str = "secretkey"
    #: The bucket prefix of ``[storage]`` (keys below are relative to it).
    prefix: str = ""

    def artifact(self, key: str) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "bucket": self.bucket, "insecure": self.insecure,
                "key": self.prefix + key,
                "accessKeySecret": {"name": self.secret, "key": self.access_key},
                "secretKeySecret": {"name": self.secret, "key": self.secret_key}}


def argo_name(name: str, limit: int = 63) -> str:
    """``name`` as a Kubernetes name (and label value): lowercase letters, digits and ``-``."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if clean == name and len(clean) <= limit:
        return clean
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{clean[:limit - 7].rstrip('-')}-{digest}"


def exchange_prefix(step_dir: str) -> str:
    """Where a step's objects go in the bucket: ``argo/WORKFLOW/STEPDIR`` (the step
    directory is ``/hpcflow/WORKFLOW/STEPDIR`` in its pod)."""
    return "argo/" + "/".join(step_dir.strip("/").split("/")[1:])


def quantities(pods: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Kubernetes resources from ``cpu``, ``memory`` and ``gpus`` (each both requested and
    the limit, so the pod gets what it asked for), then ``requests``/``limits`` over them."""
    base = {}
    for key, resource in (("cpu", "cpu"), ("memory", "memory"), ("gpus", "nvidia.com/gpu")):
        if pods.get(key) is not None:
            base[resource] = str(pods[key])
    requests = {**base, **{k: str(v) for k, v in (pods.get("requests") or {}).items()}}
    limits = {**base, **{k: str(v) for k, v in (pods.get("limits") or {}).items()}}
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def runner_script(python: str, bundle: str) -> str:
    """What the pod's shell runs in the step directory: the shipped runner on ``.``, its
    output into the pod's log and ``log.txt``, its exit code kept."""
    exit_file = f"{PRIVATE_DIR}/exit"
    return (f'export PYTHONPATH="$PWD/{bundle}${{PYTHONPATH:+:$PYTHONPATH}}" '
            f"PYTHONUNBUFFERED=1 {RESULT_KEYS_FILE_ENV}={KEYS_FILE}\n"
            f"{{ {shlex.quote(python)} -m hpcflow.daemon.runner . 2>&1; "
            f"echo $? > {exit_file}; }} | tee {LOG_FILE}\n"
            f'exit "$(cat {exit_file})"\n')


def step_template(template_name: str, job: JobSpec, pods: dict[str, Any], python: str,
                  s3: S3Location, bundle_key: str) -> dict[str, Any]:
    """The container template of one step."""
    prefix = exchange_prefix(job.step_dir)
    # beside the workflows' directories (/hpcflow/.runner/), not inside an input artifact
    bundle = f"../../{RUNNER_DIR}/{posixpath.basename(bundle_key)}"
    container: dict[str, Any] = {
        "image": job.image, "command": ["sh", "-c"], "args": [runner_script(python, bundle)],
        "workingDir": job.step_dir,
        "env": [{"name": k, "value": str(v)} for k, v in sorted((pods.get("envs") or {}).items())],
    }
    resources = quantities(pods)
    if resources:
        container["resources"] = resources
    if pods.get("image_pull_policy"):
        container["imagePullPolicy"] = pods["image_pull_policy"]

    def output(name: str, path: str, key: str, archived: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "path": f"{job.step_dir}/{path}", "optional": True,
                               "s3": s3.artifact(f"{prefix}/{key}")}
        if not archived:
            out["archive"] = {"none": {}}
        return out

    template: dict[str, Any] = {
        "name": template_name,
        "inputs": {"artifacts": [
            {"name": "job", "path": job.step_dir, "s3": s3.artifact(f"{prefix}/{JOB_OBJECT}")},
            {"name": "runner", "path": posixpath.normpath(f"{job.step_dir}/{bundle}"),
             "s3": s3.artifact(bundle_key), "mode": 0o600},
        ]},
        "container": container,
        "outputs": {"artifacts": [
            output("result", RESULT_FILE, RESULT_OBJECT),
            output("log", LOG_FILE, LOG_OBJECT),
            output("relay", f"{RELAY_DIR}/{job.runner['artifact_prefix']}", OUTPUTS_OBJECT,
                   archived=True),
        ]},
    }
    if job.timeout:
        # Kubernetes stops the pod at the step's timeout (the engine also does, through
        # terminate): string form, as Argo's schema types it
        template["activeDeadlineSeconds"] = str(int(job.timeout))
    if pods.get("node_selector"):
        template["nodeSelector"] = {k: str(v) for k, v in pods["node_selector"].items()}
    if pods.get("tolerations"):
        template["tolerations"] = list(pods["tolerations"])
    return template


def workflow_manifest(name: str, members: list[JobSpec], pods: dict[str, Any], python: str,
                      s3: S3Location, bundle_key: str, labels: dict[str, str],
                      ttl_seconds: int) -> dict[str, Any]:
    """One Argo Workflow: a single step's pod, or (a pack, ``group_size``) one pod per member
    started together by one ``steps`` template. Finished pods that succeeded are collected at
    once (``podGC``); a failed one stays for its log until the daemon deletes the Workflow
    after reading its result, or ``ttl_seconds`` later if the daemon is gone."""
    spec: dict[str, Any] = {
        "podGC": {"strategy": "OnPodSuccess"},
        "ttlStrategy": {"secondsAfterCompletion": ttl_seconds},
    }
    if pods.get("service_account"):
        spec["serviceAccountName"] = pods["service_account"]
    if len(members) == 1:
        spec["entrypoint"] = "step"
        spec["templates"] = [step_template("step", members[0], pods, python, s3, bundle_key)]
    else:
        names = [member_name(job.name) for job in members]
        spec["entrypoint"] = "pack"
        spec["templates"] = [{"name": "pack", "steps": [[
            {"name": n, "template": n} for n in names]]}] + [
            step_template(n, job, pods, python, s3, bundle_key)
            for n, job in zip(names, members, strict=True)]
    return {"apiVersion": API_VERSION, "kind": "Workflow",
            "metadata": {"name": name, "labels": labels}, "spec": spec}


def member_name(job_name: str) -> str:
    """A pack member's step (and template) name in its Workflow: ``s-STEP-ATTEMPT`` from the
    job's name ``hpcflow-WF-STEP-ATTEMPT``.

    >>> member_name("hpcflow-my-wf-12-0")
    's-12-0'
    """
    step, attempt = job_name.rsplit("-", 2)[1:]
    return f"s-{step}-{attempt}"
