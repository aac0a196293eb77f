"""One pod of a container (or script) template: a local process under a per-pod root.

The contract (paths under ROOT, relative commands) is in the package docstring. A pod's life
replays what the kubelet and Argo's init/main/wait containers do, with their messages:

* a ``secretKeyRef`` that cannot be resolved keeps the pod Pending with the kubelet's
  ``CreateContainerConfigError: secret "NAME" not found`` (or ``couldn't find key KEY in
  Secret NS/NAME``), as does an ImagePullBackOff fault with its message, until the deadline;
* the pod's active deadline (the template's ``activeDeadlineSeconds``, capped by what is left
  of the workflow's, as workflowpod.go computes it) ends it: node Failed with the kubelet's
  ``Pod was active on the node longer than the specified deadline`` (Argo e2e
  test/e2e/workflow_test.go);
* an input artifact that cannot be loaded fails the init container: node Error,
  ``init: Error (exit code 1): MESSAGE``;
* a non-zero exit: node Failed ``main: Error (exit code N)`` (operator.go inferFailedReason);
* outputs the wait container cannot save: node Error ``wait: Error (exit code 1): MESSAGE``;
* ``outputs.exitCode`` is set from the main container's exit code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import artifacts, faults

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
PYTHON_RE = re.compile(r"^python(3(\.\d+)?)?$")


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def under_root(root: Path, path: str) -> Path:
    """ROOT + an absolute container path (relative ones are taken from ROOT too)."""
    return root / path.lstrip("/")


class Pod:
    """Runs in its own thread; the controller reads ``phase``/``node_phase``/``message``."""

    def __init__(self, *, name: str, namespace: str, node_id: str, template: dict[str, Any],
                 root: Path, log_dir: Path, deadline: float | None, fault: str | None,
                 secret: Callable[[str, str], str], repository: dict[str, Any],
                 key_prefix: str, deadline_message: str = DEADLINE_MESSAGE) -> None:
        self.name = name
        self.namespace = namespace
        self.node_id = node_id
        self.template = template
        self.root = root
        self.log_dir = log_dir
        self.deadline = deadline
        self.fault = fault
        self.secret = secret
        self.repository = repository
        self.key_prefix = key_prefix
        self.deadline_message = deadline_message
        self.lock = threading.Lock()
        self.phase = "Pending"          # the Kubernetes pod phase; "Deleted" once gone
        self.node_phase = "Pending"     # what Argo makes of it
        self.message = ""
        self.exit_code: int | None = None
        self.outputs: dict[str, Any] = {}
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self._kill_message: str | None = None
        self._killed = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"pod-{name}", daemon=True)

    # -- controller side -------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def done(self) -> bool:
        with self.lock:
            return self.node_phase in ("Succeeded", "Failed", "Error")

    def kill(self, message: str) -> None:
        """Stop the pod as Argo's execution control does (shutdown, workflow deadline)."""
        with self.lock:
            if self.node_phase in ("Succeeded", "Failed", "Error"):
                return
            self._kill_message = message
        self._killed.set()
        self._signal_process()

    def delete_logs(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def log_path(self, container: str) -> Path:
        return self.log_dir / f"{container}.log"

    # -- the pod's own thread --------------------------------------------------------------
    def _set(self, **fields: Any) -> None:
        with self.lock:
            for key, value in fields.items():
                setattr(self, key, value)

    def _finish(self, node_phase: str, message: str = "", pod_phase: str = "Failed") -> None:
        self._set(node_phase=node_phase, message=message, phase=pod_phase,
                  finished_at=now_rfc3339())

    def _on_deadline(self) -> None:
        self._signal_process()

    def _should_stop(self) -> tuple[str, str] | None:
        """(phase, message) when the pod must end now (killed or past its deadline)."""
        with self.lock:
            if self._kill_message is not None:
                return "Failed", self._kill_message
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "Failed", self.deadline_message
        return None

    def _wait_slice(self) -> float:
        """How long to sleep before looking at the deadline again (at most 1 s)."""
        if self.deadline is None:
            return 1.0
        return max(0.01, min(1.0, self.deadline - time.monotonic()))

    def _run(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("init", "main", "wait"):
            self.log_path(name).touch()
        container = self.template.get("container") or self.template.get("script") or {}
        try:
            env = self._environment(container)
            waiting = ""
        except KeyError as exc:
            env, waiting = {}, f"CreateContainerConfigError: {exc.args[0]}"
        if self.fault == "ImagePullBackOff":
            waiting = faults.image_pull_message(str(container.get("image", "")))
        if self.fault == "Unschedulable":
            waiting = faults.UNSCHEDULABLE_MESSAGE
        if waiting:
            self._set(message=waiting)
            while (stop := self._should_stop()) is None:
                self._killed.wait(self._wait_slice())
            self._finish(*stop)
            return
        if (stop := self._should_stop()) is not None:
            self._finish(*stop)
            return
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._load_inputs()
        except artifacts.ArtifactError as exc:
            self._append_log("init", str(exc))
            self._finish("Error", f"init: Error (exit code 1): {exc}")
            return
        self._run_main(container, env)

    def _environment(self, container: dict[str, Any]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": str(self.root), "HOSTNAME": self.name, "ARGO_CONTAINER_NAME": "main",
               "ARGO_NODE_ID": self.node_id, "ARGO_POD_NAME": self.name}
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                env[item["name"]] = str(item.get("value", ""))
                continue
            try:
                env[item["name"]] = self.secret(ref.get("name", ""), ref.get("key", ""))
            except KeyError:
                if not ref.get("optional"):
                    raise
        return env

    def _load_inputs(self) -> None:
        for art in (self.template.get("inputs") or {}).get("artifacts") or []:
            if not art.get("path"):
                continue
            artifacts.load_input(art, under_root(self.root, art["path"]), self.repository,
                                 self.secret)

    def _command(self, container: dict[str, Any]) -> list[str]:
        argv = [str(a) for a in (container.get("command") or [])]
        argv += [str(a) for a in (container.get("args") or [])]
        if "source" in container:
            script = under_root(self.root, "/argo/staging/script")
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(container["source"])
            argv.append(str(script))
        if argv and PYTHON_RE.match(os.path.basename(argv[0])):
            argv[0] = shutil.which("python3") or "python3"
        return argv

    def _run_main(self, container: dict[str, Any], env: dict[str, str]) -> None:
        cwd = under_root(self.root, container.get("workingDir") or "/")
        cwd.mkdir(parents=True, exist_ok=True)
        argv = self._command(container)
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            # The runtime's error for a missing executable (runc: exec: "X": ... not found).
            self._append_log("main", str(exc))
            self._set(exit_code=128)
            self._finish("Failed", "main: StartError (exit code 128): failed to create "
                         f"containerd task: exec: {argv[0] if argv else ''!r}: {exc.strerror}")
            self._set_exit_output(128)
            return
        self._set(_proc=proc, phase="Running", node_phase="Running", message="",
                  started_at=now_rfc3339())
        pump = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        pump.start()
        if self.fault in ("OOMKilled", "Evicted", "Preempted"):
            self._signal_process(hard=True)
        # A blocking wait costs no CPU (Popen.wait with a timeout polls): kill() and the
        # deadline timer signal the process, which ends the wait.
        timer = None
        if self.deadline is not None:
            timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._on_deadline)
            timer.daemon = True
            timer.start()
        code = proc.wait()
        if timer is not None:
            timer.cancel()
        pump.join(timeout=5)
        stop = self._should_stop()
        exit_code = 128 - code if code < 0 else code
        self._set(exit_code=exit_code)
        self._conclude(stop, exit_code)

    def _conclude(self, stop: tuple[str, str] | None, exit_code: int) -> None:
        if self.fault == "Preempted":
            self.delete_logs()
            self._finish("Error", faults.POD_DELETED, pod_phase="Deleted")
            return
        if self.fault == "Evicted":
            self._finish("Failed", faults.EVICTED_MESSAGE)
            return
        if stop is not None:
            self._set_exit_output(exit_code)
            self._finish(*stop)
            return
        if self.fault == "OOMKilled":
            self._set_exit_output(faults.OOM_EXIT)
            self._finish("Failed", f"main: OOMKilled (exit code {faults.OOM_EXIT})")
            return
        error = self._save_outputs()
        self._set_exit_output(exit_code)
        if exit_code != 0:
            self._finish("Failed", f"main: Error (exit code {exit_code})")
        elif error:
            self._append_log("wait", error)
            self._finish("Error", f"wait: Error (exit code 1): {error}")
        else:
            self._finish("Succeeded", "", pod_phase="Succeeded")

    def _set_exit_output(self, exit_code: int) -> None:
        with self.lock:
            self.outputs["exitCode"] = str(exit_code)

    def _save_outputs(self) -> str:
        """Save parameters, artifacts and result; the first error (Argo keeps the first)."""
        outs = self.template.get("outputs") or {}
        errors: list[str] = []
        params = []
        for param in outs.get("parameters") or []:
            reported = dict(param)
            source = (param.get("valueFrom") or {}).get("path")
            if source:
                try:
                    value = under_root(self.root, source).read_text()
                except OSError:
                    if "default" in (param.get("valueFrom") or {}):
                        value = param["valueFrom"]["default"]
                    else:
                        errors.append(f"open {source}: no such file or directory")
                        continue
                reported["value"] = value[:-1] if value.endswith("\n") else value
            params.append(reported)
        arts = []
        for art in outs.get("artifacts") or []:
            try:
                saved = artifacts.save_output(art, under_root(self.root, art.get("path", "")),
                                              self.repository, self.secret, self.key_prefix)
            except artifacts.ArtifactError as exc:
                errors.append(str(exc))
                continue
            except Exception as exc:  # boto errors: report like the wait container does
                errors.append(f"failed to save artifact {art.get('name')}: {exc}")
                continue
            if saved is not None:
                arts.append(saved)
        with self.lock:
            if params:
                self.outputs["parameters"] = params
            if arts:
                self.outputs["artifacts"] = arts
            if "script" in self.template:
                text = self.log_path("main").read_text() if self.log_path("main").exists() else ""
                lines = [ln.split(" ", 1)[1] if " " in ln else "" for ln in text.splitlines()]
                self.outputs["result"] = "\n".join(lines)
        return errors[0] if errors else ""

    def _signal_process(self, hard: bool = False) -> None:
        with self.lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            return
        if not hard:
            threading.Thread(target=self._kill_later, args=(proc,), daemon=True).start()

    @staticmethod
    def _kill_later(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log_path("main"), "a", encoding="utf-8") as log:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(f"{_stamp()} {line}\n")
                log.flush()

    def _append_log(self, container: str, text: str) -> None:
        with open(self.log_path(container), "a", encoding="utf-8") as log:
            for line in text.splitlines() or [""]:
                log.write(f"{_stamp()} {line}\n")

    def record(self) -> dict[str, Any]:
        """What ``GET /standin/workflows`` shows of the pod (env NAMES only, never values)."""
        container = self.template.get("container") or self.template.get("script") or {}
        return {
            "podName": self.name, "nodeId": self.node_id, "phase": self.phase,
            "image": container.get("image"), "command": container.get("command"),
            "args": container.get("args"), "workingDir": container.get("workingDir"),
            "env": sorted(e.get("name", "") for e in container.get("env") or []),
            "envFromSecrets": sorted(
                f"{e['name']}<-{e['valueFrom']['secretKeyRef'].get('name')}"
                for e in container.get("env") or []
                if (e.get("valueFrom") or {}).get("secretKeyRef")),
            "resources": container.get("resources"),
            "imagePullPolicy": container.get("imagePullPolicy"),
            "nodeSelector": self.template.get("nodeSelector"),
            "tolerations": self.template.get("tolerations"),
            "serviceAccountName": self.template.get("serviceAccountName"),
            "activeDeadlineSeconds": self.template.get("activeDeadlineSeconds"),
            "root": str(self.root),
        }

