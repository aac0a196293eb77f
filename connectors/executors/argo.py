"""Container steps offloaded to an Argo Workflows cluster: one Argo Workflow per step (or per
pack of steps, ``group_size``), through the Argo Server's REST API.

Exactly once: the Workflow's name is the job's deterministic name; the service records the
intent before ``create``, and a ``409 AlreadyExists`` (a crash came after an earlier create)
adopts the Workflow that exists. Polls are one ``list`` per cluster for every live step
(label selector on this home, trimmed ``fields``), never a ``get`` per step. A finished
Workflow is deleted (its pods with it) once its steps' results are recorded: the next poll
finds it final and no longer asked about. Its step's ``result.json`` and ``log.txt`` stay
in the exchange bucket, so ``hpcflow logs`` and an engine restarted after the Workflow's TTL
still find them.

Steps' files travel through the bucket of ``[storage]`` (``argo_manifest.py``): the daemon
uploads each step's directory as a tarball, and brings the outputs the pod left back into
the workflow's own storage (a relay, as for SSH machines).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import posixpath
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from hpcflow import phases
from hpcflow.connectors.executors.argo_client import ArgoClient
from hpcflow.connectors.executors.argo_config import ArgoCluster
from hpcflow.connectors.executors.argo_manifest import (
    EXIT_NOT_FOUND,
    HOME_LABEL,
    JOB_OBJECT,
    KEYS_FILE,
    LOG_OBJECT,
    OUTPUTS_OBJECT,
    RESULT_OBJECT,
    WORKFLOW_LABEL,
    S3Location,
    argo_name,
    exchange_prefix,
    member_name,
    workflow_manifest,
)
from hpcflow.connectors.executors.base import (
    RESULT_KEYS_ENV,
    JobRecord,
    JobResult,
    JobSpec,
    JobState,
    JobStatus,
    safe_dir_name,
    step_dir_name,
)
from hpcflow.connectors.executors.bundle import runner_bundle
from hpcflow.connectors.executors.relay import (
    RELAY_DIR,
    outage_is_unreachable,
    put_inputs,
    relay_storage,
    relayed,
)
from hpcflow.connectors.storage.base import check_key
from hpcflow.connectors.transports.base import TransportError
from hpcflow.connectors.transports.local import LocalTransport
from hpcflow.errors import HpcflowError
from hpcflow.secrets import ResultKeys

log = logging.getLogger("hpcflow.engine")

#: What a poll asks of each Workflow: names, phases, messages and the nodes' (no spec).
LIST_FIELDS = "items.metadata.name,items.status.phase,items.status.message,items.status.nodes"
#: A Workflow created but not yet listed (a lagging informer cache) is not lost before this.
VANISHED_GRACE = 60.0
FINAL_PHASES = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
#: Pending-pod reasons that never resolve by waiting: the step fails at once, saying why.
STUCK_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError")


def home_id(home: Path) -> str:
    """The label value that marks this home's Workflows."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]


class ArgoExecutor:
    #: A pod waits (Pending, with Kubernetes' reason) before it runs.
    queues = True

    def __init__(self, cluster: ArgoCluster, client: ArgoClient, exchange_spec: dict[str, Any],
                 s3: S3Location, home: Path, result_keys: ResultKeys | None = None) -> None:
        self.name = cluster.name
        self.cluster = cluster
        self.client = client
        self.exchange_spec = exchange_spec
        self.s3 = s3
        self.home_id = home_id(home)
        self.result_keys = result_keys
        self._live = 0
        self._bundles: set[str] = set()
        self._exchange: Any = None
        self._targets: dict[str, Any] = {}

    # -- the Executor protocol --------------------------------------------------------
    def step_dir(self, workflow_id: str, step_id: int, step_name: str, attempt: int) -> str:
        """The step's directory in its pod (the exchange bucket's objects are named after
        it): ``/hpcflow/WORKFLOW/STEP``."""
        return f"/hpcflow/{safe_dir_name(workflow_id)}/{step_dir_name(step_name, step_id, attempt)}"

    def free_slots(self) -> int:
        return max(0, self.cluster.max_workflows - self._live)

    def submit(self, job: JobSpec) -> str:
        return self._create(job.name, [job])

    def submit_pack(self, pack_name: str, members: list[JobSpec]) -> str:
        return self._create(pack_name, members)

    def reconcile(self, record: JobRecord, job: JobSpec) -> str:
        """After a crash between the intent and the recorded id: the Workflow if it exists
        (or its step's result if it ended and was removed), else created now."""
        found = self.find(record.name)
        if found:
            return found
        if self.ran(record.step_dir):
            return argo_name(record.name)
        return self.submit(job)

    def find(self, pack_name: str) -> str | None:
        name = argo_name(pack_name)
        return name if self.client.get(name) is not None else None

    def ran(self, step_dir: str) -> bool:
        """The step's result is in the exchange bucket (its Workflow may be gone)."""
        return self._read_object(f"{exchange_prefix(step_dir)}/{RESULT_OBJECT}") is not None

    def poll(self, jobs: list[JobRecord]) -> list[JobStatus]:
        items = self.client.list_workflows(f"{HOME_LABEL}={self.home_id}", LIST_FIELDS)
        by_name = {item["metadata"]["name"]: item for item in items}
        names = [job.native_id or argo_name(job.name) for job in jobs]
        statuses = [self._status(job, by_name.get(name)) for job, name in zip(jobs, names,
                                                                           strict=True)]
        live = {name for name, s in zip(names, statuses, strict=True)
                if s.state not in (JobState.FINISHED, JobState.LOST)}
        self._live = len(live)
        # A Workflow whose steps all ended is removed now (its pods with it): their results
        # and logs stay in the bucket. Finished ones no job asks about (left by a crash) too.
        done = {n for n in names if n not in live and n in by_name}
        done |= {n for n, item in by_name.items() if n not in names
                 and (item.get("status") or {}).get("phase") in FINAL_PHASES}
        for name in sorted(done):
            try:
                self.client.delete(name)
            except (HpcflowError, TransportError) as exc:
                log.warning("cannot remove Argo Workflow %s from %s (%s): trying again later",
                            name, self.name, exc)
        return statuses

    def cancel(self, jobs: list[JobRecord]) -> None:
        """Terminate each job's Argo Workflow (a pack's whole), then remove it: no poll may
        come to collect it (its steps are failed by the service)."""
        names = sorted({j.native_id or argo_name(j.name) for j in jobs})
        for name in names:
            self.client.terminate(name)
        for name in names:
            self.client.delete(name)
        with contextlib.suppress(HpcflowError, OSError, TransportError), \
                outage_is_unreachable():
            self._storage().delete_keys([f"{exchange_prefix(j.step_dir)}/{o}" for j in jobs
                                         for o in (JOB_OBJECT, OUTPUTS_OBJECT)])

    def log_tail(self, job: JobRecord, lines: int) -> str | None:
        try:
            text = self.read_log(job)
        except (HpcflowError, OSError):
            return None
        if text is None:
            return None
        tail = text.splitlines()[-lines:]
        return "\n".join(tail) if tail else None

    def read_log(self, job: JobRecord) -> str | None:
        """The step's log: its pod's, through the Argo Server's log API, while its Workflow
        exists; the copy the pod left in the exchange bucket after."""
        name = job.native_id or argo_name(job.name)
        lines = self.client.log(name)
        if lines is not None and job.pack:  # the member's pod: WORKFLOW-TEMPLATE-HASH
            mark = f"-{member_name(job.name)}-"
            lines = [(pod, text) for pod, text in lines if mark in pod]
        if lines:
            return "\n".join(text for _, text in lines)
        data = self._read_object(f"{exchange_prefix(job.step_dir)}/{LOG_OBJECT}")
        return None if data is None else data.decode(errors="replace")

    def close(self) -> None:
        self.client.close()

    # -- submission --------------------------------------------------------------------
    def _create(self, name: str, members: list[JobSpec]) -> str:
        """Upload the members' files, create their Workflow; its name (the native id)."""
        for job in members:
            if not job.image:
                raise HpcflowError(f"step directory {job.step_dir}: Argo runs container "
                                   "steps only; give the step's template an image=")
        bundle_key = self._ship_runner()
        with outage_is_unreachable():
            for job in members:
                self._upload_job(job)
        pods = {**self.cluster.pod_defaults, **dict(members[0].resources)}
        wf_name = argo_name(name)
        labels = {HOME_LABEL: self.home_id,
                  WORKFLOW_LABEL: argo_name(str(members[0].runner["workflow_id"]))}
        manifest = workflow_manifest(wf_name, members, pods, self.cluster.python, self.s3,
                                     bundle_key, labels, self.cluster.ttl_seconds)
        if not self.client.create(manifest):
            log.info("Argo Workflow %s exists already on %s: adopted, not created again",
                     wf_name, self.name)
        self._live += 1
        return wf_name

    def _storage(self) -> Any:
        """The exchange bucket's client (one per executor: making one costs a session)."""
        if self._exchange is None:
            self._exchange = relay_storage(self.exchange_spec)
        return self._exchange

    def _ship_runner(self) -> str:
        """The runner bundle's key in the exchange bucket (uploaded once per version)."""
        name, data = runner_bundle()
        key = f"argo/bundles/{name}"
        if key not in self._bundles:
            storage = self._storage()
            with outage_is_unreachable():
                if not storage.list(key):
                    storage.put_bytes(key, data)
            self._bundles.add(key)
        return key

    def _upload_job(self, job: JobSpec) -> None:
        """The step directory as a tarball (its inputs relayed into it), and its document
        (the bring-back reads where the outputs go from it)."""
        prefix = exchange_prefix(job.step_dir)
        dir_name = posixpath.basename(job.step_dir)
        with tempfile.TemporaryDirectory(prefix="hpcflow-argo-") as tmp:
            stage = Path(tmp) / dir_name
            put_inputs(LocalTransport(), str(stage / RELAY_DIR), job)
            ready = relayed(job, RELAY_DIR).with_runner(wake_dir=None)
            files = ready.to_files()
            if self.result_keys is not None:
                files[KEYS_FILE] = self.result_keys.env([job.step_dir])[RESULT_KEYS_ENV].encode()
            LocalTransport().write_files(str(stage), files)
            archive = Path(tmp) / JOB_OBJECT
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(stage, arcname=dir_name)
            storage = self._storage()
            storage.put_bytes(f"{prefix}/{JOB_OBJECT}", archive.read_bytes())
            storage.put_bytes(f"{prefix}/step.json", files["step.json"])

    # -- polling -----------------------------------------------------------------------
    def _status(self, job: JobRecord, item: dict[str, Any] | None) -> JobStatus:
        if item is None:
            # Not listed yet, most likely (a list may lag a create): no bucket read per poll
            # for it until its grace is over.
            if time.time() - job.created_at < VANISHED_GRACE:
                return JobStatus(job.name, JobState.SUBMITTED)
            if self.ran(job.step_dir):  # ended, and its Workflow removed meanwhile
                return self._finished(job, None, None)
            return JobStatus(job.name, JobState.LOST, detail=(
                f"Argo Workflow {job.native_id} is not in namespace {self.cluster.namespace!r} "
                f"of {self.name} and left no result"))
        status = item.get("status") or {}
        node = self._node(job, status.get("nodes") or {})
        phase = (node or {}).get("phase") or status.get("phase") or "Pending"
        message = (node or {}).get("message") or status.get("message") or ""
        if phase in FINAL_PHASES or (status.get("phase") in FINAL_PHASES and node is None):
            return self._finished(job, node, status)
        if phase == "Running":
            return JobStatus(job.name, JobState.RUNNING)
        if any(reason in message for reason in STUCK_REASONS):
            self.client.terminate(item["metadata"]["name"])
            return JobStatus(job.name, JobState.FINISHED, JobResult.without_runner(
                phases.FAILED, f"the pod cannot start on {self.name}: {message}"))
        return JobStatus(job.name, JobState.QUEUED, detail=message or "Pending")

    def _node(self, job: JobRecord, nodes: dict[str, Any]) -> dict[str, Any] | None:
        """The pod node of ``job`` (its pack member's, for a pack)."""
        pods = [n for n in nodes.values() if n.get("type") == "Pod"]
        if job.pack:
            wanted = member_name(job.name)
            pods = [n for n in pods if n.get("displayName") == wanted
                    or n.get("templateName") == wanted]
        return pods[0] if pods else None

    def _finished(self, job: JobRecord, node: dict[str, Any] | None,
                  status: dict[str, Any] | None) -> JobStatus:
        prefix = exchange_prefix(job.step_dir)
        with outage_is_unreachable():
            data = self._read_object(f"{prefix}/{RESULT_OBJECT}")
        result = JobResult.from_bytes(data) if data is not None else None
        if result is None:
            result = self._account(job, node, status)
        elif result.succeeded:
            try:
                with outage_is_unreachable():
                    self._bring_back(prefix, result.outputs)
            except (HpcflowError, OSError, tarfile.TarError) as exc:
                result = JobResult.without_runner(
                    phases.ERROR, f"cannot bring the outputs back from {self.name}: {exc}")
        # The step's inputs and outputs leave the bucket (its outputs are in the workflow's
        # storage now); its document, result and log stay for a late reconcile and the logs.
        with contextlib.suppress(HpcflowError, OSError, TransportError), \
                outage_is_unreachable():
            self._storage().delete_keys([f"{prefix}/{JOB_OBJECT}", f"{prefix}/{OUTPUTS_OBJECT}"])
        return JobStatus(job.name, JobState.FINISHED, result)

    def _account(self, job: JobRecord, node: dict[str, Any] | None,
                 status: dict[str, Any] | None) -> JobResult:
        """Why a pod ended without the runner's result, in Argo's and Kubernetes' words."""
        node = node or {}
        message = node.get("message") or (status or {}).get("message") or ""
        phase = node.get("phase") or (status or {}).get("phase") or "?"
        exit_code = str(((node.get("outputs") or {}).get("exitCode")) or "")
        where = f"Argo {phase} on {self.name}: {message or 'no message'}"
        if "OOMKilled" in message:
            return JobResult.without_runner(
                phases.FAILED, f"the step ran out of memory (OOMKilled; {where}): raise "
                "memory= in its ArgoExecutor")
        if "deadline" in message:
            return JobResult.without_runner(phases.FAILED, f"TimeoutError: {where}",
                                            timed_out=True)
        if "evicted" in message.lower() or "low on resource" in message or \
                message == "pod deleted" or "preempt" in message.lower():
            return JobResult.without_runner(phases.FAILED, f"the pod was evicted or "
                                            f"preempted ({where})", infrastructure=True)
        if exit_code == str(EXIT_NOT_FOUND):
            return JobResult.without_runner(
                phases.FAILED, f"the step's image has no {self.cluster.python}: hpcflow's "
                f"runner needs Python {_python_minor()} in the image (or python = \"...\" in "
                f"[argo.{self.name}] naming the image's one) ({where})")
        return JobResult.without_runner(
            phases.FAILED, f"the pod ended without hpcflow's result ({where}); see hpcflow logs")

    def _bring_back(self, prefix: str, outputs: dict[str, Any] | None) -> None:
        """The output objects the pod left: from the exchange bucket into the workflow's
        storage (nothing to do for a step without output artifacts)."""
        if not (outputs or {}).get("artifacts"):
            return
        document = self._read_object(f"{prefix}/step.json")
        if document is None:
            raise HpcflowError(f"the step's document is not in the exchange bucket at {prefix}")
        job = json.loads(document)
        target = self._target(job["relay_to"])
        packed = self._read_object(f"{prefix}/{OUTPUTS_OBJECT}")
        if packed is None:
            # brought back by an earlier poll whose result the engine did not record (a
            # crash): fine if every output is in the workflow's storage
            missing = [part["key"] for ref in (outputs or {})["artifacts"].values() if ref
                       for part in ref.get("parts", []) if not target.list(part["key"])]
            if missing:
                raise HpcflowError(f"the step's outputs are not in the exchange bucket at "
                                   f"{prefix} nor in the workflow's storage ({missing[0]})")
            return
        with tempfile.TemporaryDirectory(prefix="hpcflow-argo-") as tmp:
            archive = Path(tmp) / OUTPUTS_OBJECT
            archive.write_bytes(packed)
            out = Path(tmp) / "out"
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(out, filter="data")
            roots = list(out.iterdir())
            base = roots[0] if len(roots) == 1 and roots[0].is_dir() else out
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                key = check_key(f"{job['artifact_prefix']}/{path.relative_to(base).as_posix()}")
                target.upload(key, str(path))

    def _target(self, spec: dict[str, Any]) -> Any:
        """The client of a workflow's storage (kept: making one costs a session)."""
        key = json.dumps(spec, sort_keys=True)
        if key not in self._targets:
            self._targets[key] = relay_storage(spec)
        return self._targets[key]

    def _read_object(self, key: str) -> bytes | None:
        """An object of the exchange bucket; None when it is not there."""
        data: bytes | None = self._storage().get_bytes(key)
        return data


def _python_minor() -> str:
    import sys

    return f"{sys.version_info.major}.{sys.version_info.minor}"
