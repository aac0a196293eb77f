"""The in-job runner: ``python -m hpcflow.daemon.runner STEP_DIR``.

Runs one step wherever its job landed (a local process or a cluster node):
claims the step directory, stages inputs, runs the OP in ``workdir/``, stores
outputs, and writes ``result.json`` last (atomically). It never touches the
store. Imports are kept few: this starts once per step.
"""

from __future__ import annotations

import _thread
import contextlib
import fcntl
import json
import os
import pickle
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from hpcflow import import_timing, values
from hpcflow.artifact_files import OutsideLinkError, pack, present, unpack
from hpcflow.artifact_part import ArtifactPartError, fetch_sub_path, present_sub_path
from hpcflow.connectors.executors.base import (
    CLAIM_BEAT,
    CLAIM_FILE,
    EXIT_ALREADY_CLAIMED,
    GROUP_SEEDS,
    OP_FILE,
    RESULT_FILE,
    RESULT_KEYS_ENV,
    RESULT_KEYS_FILE_ENV,
    derived_key,
    seal_result,
)
from hpcflow.connectors.storage.base import storage_from_spec
from hpcflow.connectors.storage.s3 import credentials_from_env
from hpcflow.daemon import value_files
from hpcflow.daemon.disk import (
    SPACE_ERRNOS,
    STEP_RESERVE,
    Reserve,
    describe,
    write_error,
)
from hpcflow.daemon.volumes import save_to_volumes, volume_path

#: The keys this job seals results with (step directory name -> key; for a job of several
#: steps, ``GROUP_SEEDS`` -> {workflow directory name: seed}), taken out of the environment
#: before any step's code runs; forked pack members inherit them.
_result_keys: dict[str, Any] = {}


def take_result_keys() -> None:
    raw = os.environ.pop(RESULT_KEYS_ENV, None)
    if raw:
        _result_keys.update(json.loads(raw))
    # A pod of an Argo cluster gets them in a file of its job's tarball (a Workflow's spec
    # is readable by all of its namespace): read once, then removed.
    path = os.environ.pop(RESULT_KEYS_FILE_ENV, None)
    if path:
        with contextlib.suppress(FileNotFoundError):
            _result_keys.update(json.loads(Path(path).read_text()))
            os.unlink(path)


def sealed(step_dir: Path, result: dict) -> dict:
    """The result as the daemon accepts it: sealed under this step's key (a job started
    without one, by hand say, leaves it unsealed and the daemon refuses its outputs)."""
    key = _result_keys.get(step_dir.name)
    seeds = _result_keys.get(GROUP_SEEDS)
    # a pack's members come as paths relative to the pack's directory (../../NAME)
    workflow_dir = Path(os.path.normpath(step_dir)).parent.name
    if key is None and isinstance(seeds, dict) and workflow_dir in seeds:
        key = derived_key(seeds[workflow_dir], step_dir.name)
    return seal_result(result, key) if key else result


class StepFailure(Exception):
    """The step failed for a reason worth one line in ``hpcflow steps``."""

    def __init__(self, reason: str, transient: bool = False,
                 succeeded_slices: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        #: A group of slices that failed: how many of its slices succeeded (they count
        #: towards the loop's ``continue_on_num_success``/``_ratio``, as in dflow).
        self.succeeded_slices = succeeded_slices


def claim(step_dir: Path) -> int | None:
    """Create the claim file exclusively and lock it for the life of this process. It says
    which process on which host runs the step, and its mtime is renewed every
    ``CLAIM_BEAT`` seconds (``StepWatch``): a daemon on another host (where the lock may not
    be visible, on a network file system) tells a live runner from one whose host went
    down."""
    try:
        fd = os.open(step_dir / CLAIM_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}".encode())
    WATCH.start(step_dir / CLAIM_FILE)
    return fd


class StepWatch:
    """The runner's one background thread: renews the claim's mtime every ``CLAIM_BEAT``
    seconds and writes ``progress.json`` when the OP's ``progress_current``/``progress_total``
    change (every ``PROGRESS_INTERVAL``).

    Started with ``_thread`` rather than ``threading.Thread.start``, which waits until the
    new thread has run: on a busy node that wait alone cost a millisecond or more per step.
    The lock makes the last report (``unwatch``) the only writer after the OP ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._op: Any = None
        self._path: Path | None = None
        #: The OP base class's defaults: an OP that never reports progress writes nothing.
        self._last: tuple[int, int] = (0, 1)
        self._started = False

    def start(self, claim_path: Path) -> None:
        if not self._started:
            self._started = True
            _thread.start_new_thread(self._run, (claim_path,))

    def watch(self, op: Any, step_dir: Path) -> None:
        with self._lock:
            self._op, self._path, self._last = op, step_dir / "progress.json", (0, 1)

    def unwatch(self) -> None:
        """The last report; nothing is written for the OP after."""
        with self._lock:
            self._report()
            self._op = None

    def _report(self) -> None:
        if self._op is None or self._path is None:
            return
        now = (int(getattr(self._op, "progress_current", 0) or 0),
               int(getattr(self._op, "progress_total", 1) or 1))
        if now != self._last:
            write_json_atomic(self._path, {"current": now[0], "total": now[1]}, sync=False)
            self._last = now

    def _run(self, claim_path: Path) -> None:
        next_beat = time.monotonic() + CLAIM_BEAT
        while True:
            time.sleep(PROGRESS_INTERVAL)
            with self._lock, contextlib.suppress(OSError):
                self._report()
            if time.monotonic() >= next_beat:
                next_beat += CLAIM_BEAT
                with contextlib.suppress(OSError):
                    os.utime(claim_path)


def tmp_name(name: str) -> str:
    """The temporary name a file is written under before it is renamed into place."""
    return f".{name}.tmp"


#: Where ``result.json`` is written before its rename (and the step's disk reserve until
#: then).
RESULT_TMP = tmp_name(RESULT_FILE)

#: How often the OP's progress is looked at.
PROGRESS_INTERVAL = 0.5
WATCH = StepWatch()


def write_json_atomic(path: Path, data: Any, sync: bool = True, in_place: bool = False) -> None:
    """``data`` as JSON at ``path``, through its temporary name. ``in_place``: the temporary
    file exists already (the step's disk reserve) and is written over rather than replaced,
    so that writing it needs no free space (up to its size) on a full disk."""
    tmp = path.with_name(tmp_name(path.name))
    payload = json.dumps(data).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | (0 if in_place else os.O_TRUNC), 0o600)
    try:
        written = 0
        while written < len(payload):
            written += os.pwrite(fd, payload[written:], written)
        os.ftruncate(fd, len(payload))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_parameter_files(folder: Path, params: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in params.items():
        (folder / name).write_text(values.render_text(values.from_jsonable(value)))


def stage_inputs(job: dict, step_dir: Path, storage: Any) -> dict[str, Any]:
    """Parameters decoded and artifacts unpacked under ``inputs/``; returns the OP's inputs."""
    inputs = job["inputs"]
    given = inputs.get("parameters", {})
    read = value_files.reader(step_dir)
    expanded = {name: values.expand(value, read) for name, value in given.items()}
    if job.get("parameter_files"):  # dflow's debug-mode layout (submission.parameter_files)
        write_parameter_files(step_dir / "inputs" / "parameters", {
            n: v for n, v in expanded.items()
            if not value_files.in_own_file(n, given[n], "inputs/parameters")})
    inputs["parameters"] = expanded  # what script templates are given
    op_in: dict[str, Any] = {name: values.from_jsonable(v) for name, v in expanded.items()}
    kinds = job["template"].get("input_artifact_kinds", {})
    for name, ref in inputs.get("artifacts", {}).items():
        if ref is None:
            op_in[name] = None
            continue
        if "volume" in ref:  # a path in a volume another step fills as it runs (.pvc())
            op_in[name] = volume_path(step_dir, ref["volume"])
            continue
        root = step_dir / "inputs" / "artifacts" / name
        if ref.get("sub_path"):  # art.sub_path(p): the input is what lies at p
            try:
                fetch_sub_path(ref, root, storage, staging=step_dir)
            except ArtifactPartError as exc:  # an Error, as Argo's failed input download
                raise ArtifactPartError(f"input artifact {name!r}: {exc}") from None
            op_in[name] = present_sub_path(kinds.get(name, "path"), root)
            continue
        unpack(ref, root, storage, staging=step_dir)
        op_in[name] = present(ref.get("items"), kinds.get(name, "path"), root)
    return op_in


def link_python_packages(paths: list[str], step_dir: Path) -> None:
    """dflow's ``python_packages``: each package folder importable by its name in the step."""
    if not paths:
        return
    folder = step_dir / "python_packages"
    folder.mkdir(exist_ok=True)
    for path in paths:
        source = Path(path)
        if not source.exists():
            raise StepFailure(f"python package {path!r} does not exist on this host")
        link = folder / source.name
        if not link.exists():
            link.symlink_to(source.resolve())
    sys.path.insert(0, str(folder))


def run_python_op(job: dict, step_dir: Path, op_in: dict[str, Any]) -> dict[str, Any]:
    from hpcflow.python.hdf5 import accepts_hdf5, as_dflow_hands, write_datasets, written_as_hdf5
    from hpcflow.python.op import OP, FatalError, OPSignError, TransientError, check_opio
    from hpcflow.python.signs import OPIO, Artifact
    from hpcflow.python.typecheck import as_dflow_reads

    wanted, mine = job.get("python"), f"{sys.version_info[0]}.{sys.version_info[1]}"
    if wanted and wanted != mine:  # cloudpickle's code objects differ between versions
        raise StepFailure(f"the OP was pickled by Python {wanted} and this step runs Python "
                          f"{mine} ({sys.executable}): use Python {wanted} there (for a "
                          "container step, an image with it)")
    with open(step_dir / OP_FILE, "rb") as f:
        loaded = pickle.load(f)
    op: OP = loaded() if isinstance(loaded, type) else loaded
    op.key = job.get("key") or None
    op.workflow_name = job.get("workflow_id")
    op.artifact_keys = artifact_keys(job)
    name = type(op).__name__
    checked = getattr(type(op).execute, "__hpcflow_checked__", False)
    WATCH.watch(op, step_dir)
    try:
        op_opio = OPIO(op_in)
        for key, sign in op.get_input_sign().items():
            # constants as dflow's OP reads them (its parameters travel as text)
            if key in op_opio and not isinstance(sign, Artifact):
                op_opio[key] = as_dflow_reads(op_opio[key], getattr(sign, "type", sign))
            elif isinstance(sign, Artifact) and not sign.sub_path and sign.kind == "path" \
                    and op_opio.get(key) is not None:
                # dflow's sub_path=False: the artifact's root folder, not the path in it
                root = step_dir / "inputs" / "artifacts" / key
                op_opio[key] = str(root) if sign.str_leaf else root
            elif isinstance(sign, Artifact) and accepts_hdf5(sign.type) and key in op_opio:
                op_opio[key] = as_dflow_hands(sign.type, op_opio[key])
        if not checked:
            check_opio(name, "input", op.get_input_sign(), op_opio)
        op_out = op.execute(op_opio)
        if not checked:
            op_out = OPIO(op_out or {})
            check_opio(name, "output", op.get_output_sign(), op_out)
        op_out = OPIO(op_out or {})
        for key, sign in op.get_output_sign().items():
            if isinstance(sign, Artifact) and op_out.get(key) is not None and \
                    written_as_hdf5(sign.type, op_out[key]):
                op_out[key] = write_datasets(op_out[key], step_dir / HDF5_OUTPUTS / key)
    except OPSignError as exc:
        raise StepFailure(f"OPSignError: {exc}") from exc
    except TransientError as exc:
        raise StepFailure(f"TransientError: {exc}", transient=True) from exc
    except FatalError as exc:
        raise StepFailure(f"FatalError: {exc}") from exc
    except Exception as exc:
        raise StepFailure(f"{type(exc).__name__}: {exc}") from exc
    finally:
        WATCH.unwatch()
    return dict(op_out or {})


def output_key(job: dict, name: str) -> tuple[str, str | None]:
    """Where output artifact ``name`` is stored (the key ``pack`` is given) and its archive
    mode."""
    archive = job["template"]["outputs"]["artifacts"][name].get("archive", "default")
    if archive == "default":
        archive = job.get("archive_mode", "tar")
    return f"{job['artifact_prefix']}/{name}", archive


def artifact_keys(job: dict) -> dict[str, dict[str, str | None]]:
    """The storage keys an OP asks for (``get_input/output_artifact_storage_key``): an input
    stored as one part, its key; an output, the key it will be stored under."""
    inputs: dict[str, str | None] = {}
    for name, ref in (job["inputs"].get("artifacts") or {}).items():
        parts = (ref or {}).get("parts") or []
        inputs[name] = parts[0]["key"] if len(parts) == 1 else None
    outputs: dict[str, str | None] = {}
    for name in job["template"]["outputs"]["artifacts"]:
        key, archive = output_key(job, name)
        outputs[name] = f"{key}.tgz" if archive == "tar" else key
    return {"inputs": inputs, "outputs": outputs}


#: Where a step writes the ``.h5`` file of each ``HDF5Datasets`` output (``NAME/UUID.h5``).
HDF5_OUTPUTS = Path("outputs") / "hdf5"


def store_outputs(job: dict, step_dir: Path, workdir: Path, op_out: dict[str, Any],
                  storage: Any, write_files: bool = True) -> dict:
    template = job["template"]
    params: dict[str, Any] = {}
    for name, decl in template["outputs"]["parameters"].items():
        if name in op_out:
            params[name] = values.to_jsonable(op_out[name])
        elif "default" in decl:
            params[name] = decl["default"]
    arts: dict[str, Any] = {}
    for name in template["outputs"]["artifacts"]:
        value = op_out.get(name)
        if value is None:
            continue
        key, archive = output_key(job, name)
        # A Python OP's paths keep dflow's rules (relative to workdir); a script template's
        # declared output path is stored under its own name.
        script_output = template["kind"] != "python" and isinstance(value, Path)
        # an HDF5Datasets output: the .h5 file written for it, under its own name
        hdf5_file = isinstance(value, Path) and value.parent == step_dir / HDF5_OUTPUTS / name
        base = value.parent if script_output or hdf5_file else workdir
        try:
            arts[name] = pack(value, base, storage, key, archive,
                              prefix=job.get("output_dir") or "", staging=step_dir,
                              copy_within=step_dir)
        except OutsideLinkError as exc:
            raise StepFailure(f"output artifact {name!r}: {exc}") from exc
    if write_files:
        plain = params
        params = value_files.write_outputs(step_dir, params, template["outputs"]["parameters"],
                                           str(job.get("name")), bool(job.get("value_files")))
        if job.get("parameter_files"):
            write_parameter_files(step_dir / "outputs" / "parameters", {
                n: plain[n] for n in params
                if not value_files.in_own_file(n, params[n], "outputs/parameters")})
    return {"parameters": params, "artifacts": arts}


def step_storage(job: dict, step_dir: Path) -> Any:
    """The step's storage client; a relative local root (a relay that travels with the step
    directory, as dpdispatcher copies it) is relative to the step directory."""
    spec = job["storage"]
    if spec.get("kind") == "local" and not os.path.isabs(spec["root"]):
        spec = {**spec, "root": str(step_dir / spec["root"])}
    return storage_from_spec(spec)


def _failure_reason(exc: BaseException, reason: str, where: Path) -> str:
    """A full disk or quota says so, with the path and its filesystem (the OP's own
    ``OSError`` names no path when a write fails)."""
    refused = write_error(exc, SPACE_ERRNOS)
    return describe(refused, where) if refused is not None else reason


def _our_folders() -> tuple[str, ...]:
    """The folders of hpcflow's own code (its three packages; an editable install keeps
    ``daemon/`` and ``connectors/`` beside ``hpcflow/``)."""
    import hpcflow
    import hpcflow.connectors
    import hpcflow.daemon

    return tuple(os.path.join(os.path.realpath(p), "") for m in (hpcflow, hpcflow.daemon,
                                                                hpcflow.connectors)
                 for p in m.__path__)


def users_traceback(exc: BaseException) -> Any:
    """``exc``'s traceback from the first frame of the user's code on: the runner's and the
    OP wrapper's frames above it say nothing to the user. All of it when the error arose in
    hpcflow's code (a sign check, say), where those frames are the story."""
    ours = _our_folders()
    tb = exc.__traceback__
    while tb is not None and os.path.realpath(tb.tb_frame.f_code.co_filename).startswith(ours):
        tb = tb.tb_next
    return tb if tb is not None else exc.__traceback__


def _print_failure(exc: BaseException) -> None:
    """The traceback into the step's log; a log that cannot be written is not a new error."""
    with contextlib.suppress(OSError):
        traceback.print_exception(type(exc), exc, users_traceback(exc))


def run_step(step_dir: Path, job: dict, reserve: Reserve | None = None) -> dict:
    """Run the step ``job`` (its ``step.json``); its result. ``reserve`` is given back before
    a failure is written (a full disk leaves room for the log's traceback and the result)."""
    storage = step_storage(job, step_dir)
    workdir = step_dir / "workdir"
    workdir.mkdir(exist_ok=True)
    kind = job["template"]["kind"]
    # a debug-mode workflow's submitter environment, then the template's envs (dflow's
    # envs= of a PythonOPTemplate as of a script template)
    os.environ.update(job.get("env") or {})
    os.environ.update({k: str(v) for k, v in (job["template"].get("envs") or {}).items()})
    if job.get("env"):  # the OP's config as dflow's fresh import in the OP's process reads it
        from hpcflow import settings

        settings.config.update(settings.dflow_env_settings())
    started = time.time()
    where = step_dir / "inputs"  # where the step is writing, for a full disk's message
    try:
        op_in = stage_inputs(job, step_dir, storage)
        where = workdir
        if kind == "python" and job.get("slice_group"):
            from hpcflow.daemon.slice_group import run_slice_group

            link_python_packages(job["template"].get("python_packages") or [], step_dir)
            outputs = run_slice_group(job, step_dir, workdir, op_in, storage)
            return {"phase": "Succeeded", "outputs": outputs, "started": started,
                    "finished": time.time()}
        if kind == "python":
            link_python_packages(job["template"].get("python_packages") or [], step_dir)
            cwd = os.getcwd()
            os.chdir(workdir)
            try:
                op_out = run_python_op(job, step_dir, op_in)
            finally:
                os.chdir(cwd)
        else:
            from hpcflow.daemon import script_step

            try:
                op_out = script_step.run(job["template"], job["inputs"]["parameters"], op_in,
                                         step_dir, workdir, job["template"].get("envs") or {})
            except script_step.ScriptFailure as exc:
                raise StepFailure(str(exc)) from exc
            save_to_volumes(job.get("volume_saves") or {}, op_out, step_dir)
        where = Path(getattr(storage, "root", step_dir))
        outputs = store_outputs(job, step_dir, workdir, op_out, storage)
        return {"phase": "Succeeded", "outputs": outputs, "started": started,
                "finished": time.time()}
    except StepFailure as exc:
        if reserve is not None:
            reserve.release()
        # The OP's own exception, not hpcflow's wrapper around it.
        _print_failure(exc.__cause__ or exc)
        failure = {"phase": "Failed", "reason": _failure_reason(exc, exc.reason, where),
                   "transient": exc.transient, "started": started, "finished": time.time()}
        if exc.succeeded_slices is not None:
            failure["succeeded_slices"] = exc.succeeded_slices
        return failure
    except Exception as exc:
        if reserve is not None:
            reserve.release()
        _print_failure(exc)
        return {"phase": "Error",
                "reason": _failure_reason(exc, f"{type(exc).__name__}: {exc}", where),
                "started": started, "finished": time.time()}


#: A pipe to the engine that forked this runner through its fork server (set there): a byte
#: on it wakes the engine without a new file in its wake directory (a file created, seen
#: through inotify and removed again per step). None in a batch job or a plain process.
_wake_fd: int | None = None


def wake_engine_through(fd: int | None) -> None:
    """The fork server's wake-up pipe, for the runners it forks."""
    global _wake_fd
    _wake_fd = fd


def notify(job: dict) -> None:
    """Nudge the engine that a result is ready: through the fork server's pipe, else a file
    in its wake directory (if it watches this filesystem)."""
    if _wake_fd is not None:
        try:
            os.write(_wake_fd, b".")
            return
        except BlockingIOError:  # the pipe is full: the engine has wake-ups waiting already
            return
        except OSError:  # the engine that read it is gone: its successor watches the files
            pass
    wake_dir = job.get("wake_dir")
    if wake_dir:
        with contextlib.suppress(OSError):
            os.close(os.open(os.path.join(wake_dir, f"done-{os.getpid()}"),
                             os.O_CREAT | os.O_WRONLY, 0o600))


def run_pack(step_dirs: list[str]) -> int:
    """Several steps in one scheduler job (``group_size``), one after the other: each in a
    forked child with its own log, claim and result, exactly as if it had its own job."""
    from hpcflow.connectors.executors.forkserver import run_child

    for step_dir in step_dirs:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_child(str(Path(step_dir).absolute()), main)
        _, status = os.waitpid(pid, 0)
        print(f"hpcflow runner: {step_dir} exited with {os.waitstatus_to_exitcode(status)}",
              flush=True)
    return 0


def main(argv: list[str]) -> int:
    # Nothing a step writes is for other accounts, whatever umask the job started with.
    os.umask(0o077)
    # S3 credentials and result keys handed over by the daemon in the job's environment: out
    # of it before any step's code runs (kept in memory only)
    credentials_from_env()
    take_result_keys()
    if argv[:1] == ["--pack"] and len(argv) > 1:
        return run_pack(argv[1:])
    if len(argv) != 1:
        print("usage: python -m hpcflow.daemon.runner STEP_DIR | --pack STEP_DIR...",
              file=sys.stderr)
        return 2
    step_dir = Path(argv[0]).absolute()
    fd = claim(step_dir)
    if fd is None:
        print(f"hpcflow runner: {step_dir} is already claimed by another runner", file=sys.stderr)
        return EXIT_ALREADY_CLAIMED
    # The room kept for the result on a full disk is the result's own temporary file, written
    # over in place at the end: a failure gives half of it back for the log's traceback, the
    # rest is the result's whoever else fills the disk meanwhile (and it is one file fewer
    # to create and remove per step: each costs a few hundred µs on ext4).
    reserve = Reserve(step_dir / RESULT_TMP, STEP_RESERVE, keep=STEP_RESERVE // 2)
    reserve.take()
    job = json.loads((step_dir / "step.json").read_text())
    result = run_step(step_dir, job, reserve)
    if import_timing.installed():  # what a preload in the fork server would have spared
        result["imports"] = import_timing.report(step_dir)
    for stream in (sys.stdout, sys.stderr):
        # a full disk: the log loses its end, the result must not be lost
        with contextlib.suppress(OSError):
            stream.flush()
    try:
        write_json_atomic(step_dir / RESULT_FILE, sealed(step_dir, result), in_place=True)
    except OSError as exc:
        refused = write_error(exc, SPACE_ERRNOS)
        if refused is None:
            raise
        # the outputs did not fit: a short result that says why does
        write_json_atomic(step_dir / RESULT_FILE, sealed(step_dir, {
            "phase": "Error", "reason": "the step's result could not be written: "
            + describe(refused, step_dir), "started": result.get("started"),
            "finished": time.time()}), in_place=True)
    notify(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
