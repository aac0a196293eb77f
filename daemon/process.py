"""The daemon process: one per ``$HPCFLOW_HOME`` (an flock that dies with it), its logging,
its signals, its pid and status files, and the one-pass ``tick`` for cron.

``python -m hpcflow.daemon.process --home H [--log-file F] [--idle-exit S] [--tick]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hpcflow import settings
from hpcflow.config_file import load_config
from hpcflow.connectors.storage.s3 import credentials_from_env
from hpcflow.daemon.backup import check_at_start, rescue
from hpcflow.daemon.disk import overwrite_in_place, write_status_file
from hpcflow.daemon.engine import STATUS_FILE, try_lock
from hpcflow.daemon.leader import FencedError, LeaderLease, NotLeaderError, wait_for_lease
from hpcflow.daemon.store import StoreLostError, prepare_home
from hpcflow.errors import HpcflowError, StoreError
from hpcflow.privacy import PRIVATE_UMASK
from hpcflow.secrets import hold_credentials

log = logging.getLogger("hpcflow.engine")

PID_FILE = "daemon.pid"
LOG_FILE = "logs/daemon.log"
#: The status file is rewritten at most this often.
STATUS_EVERY = 2.0


class JournalFormatter(logging.Formatter):
    """systemd reads ``<N>`` priority prefixes on stderr and adds its own timestamps."""

    PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{text}"


def setup_logging(log_file: Path | None) -> None:
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=10 << 20,
                                                       backupCount=5)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        if os.environ.get("JOURNAL_STREAM"):
            handler.setFormatter(JournalFormatter("%(message)s"))
        else:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class StatusWriter:
    """Keeps ``daemon.json`` (pid, start time, version, last poll per executor) current."""

    def __init__(self, home: Path) -> None:
        from hpcflow import __version__

        self.path = home / STATUS_FILE
        self.base = {"pid": os.getpid(), "started_at": time.time(), "version": __version__,
                     "home": str(home)}
        self.written = 0.0

    def __call__(self, service: Any, force: bool = False) -> None:
        now = time.time()
        # throttled while the loop is busy; never left stale through a long sleep
        if not force and now - self.written < STATUS_EVERY and \
                getattr(service, "next_pause", 0.0) <= STATUS_EVERY:
            return
        trouble = service.trouble
        schedule = getattr(service, "schedule", None)  # back-off of slow schedulers
        data = dict(self.base, updated_at=now, last_poll=dict(service.last_poll),
                    queue_limits=queue_limits(service), submissions=submissions(service),
                    poll_backoff=schedule.report() if schedule else {},
                    **(service.reach.report() if hasattr(service, "reach") else {}),
                    **trouble.report())
        try:
            write_status_file(self.path, json.dumps(data))
        except OSError as exc:  # a full or read-only disk must not stop the daemon
            trouble.failed("status", exc, self.path)
            data.update(trouble.report())
            try:  # the reserve given back may have made room
                write_status_file(self.path, json.dumps(data))
            except OSError:
                with contextlib.suppress(OSError):
                    overwrite_in_place(self.path, json.dumps(data))
        else:
            trouble.ok("status")
            if "problem" in data and not trouble.report():  # over: not shown until the next
                with contextlib.suppress(OSError):
                    write_status_file(self.path, json.dumps(
                        {k: v for k, v in data.items() if not k.startswith("problem")}))
        self.written = now


def queue_limits(service: Any) -> dict[str, dict]:
    """The machines whose ``max_jobs`` a scheduler's refusal lowered (``QueueHold``)."""
    found = {}
    for name, executor in getattr(service, "executors", {}).items():
        hold = getattr(executor, "queue_hold", None)
        if hold is None:
            continue
        report = hold.report(executor.machine.max_jobs, time.time())
        if report is not None:
            found[name] = {**report, "configured": executor.machine.max_jobs}
    return found


def submissions(service: Any) -> dict[str, dict]:
    """Each batch machine's recent submissions against its ``submit_per_minute``."""
    return {name: executor.submissions()
            for name, executor in getattr(service, "executors", {}).items()
            if callable(getattr(executor, "submissions", None))}


def _stopped_for(service: Any, home: Path, lost: StoreLostError) -> int:
    """The store went away under the daemon: say so loudly (log, stderr), exit 3."""
    from hpcflow.daemon.service import HomeMovedError

    message = str(lost) if isinstance(lost, HomeMovedError) else \
        rescue(service.store, home, lost)
    log.critical("%s", message)
    print(f"hpcflow: {message}", file=sys.stderr)
    return 3


def _fenced(exc: FencedError) -> int:
    """Another host leads now: this engine writes nothing more, says so, exits 3."""
    log.critical("%s", exc)
    print(f"hpcflow: {exc}", file=sys.stderr)
    return 3


def _lead(lease: LeaderLease, args: argparse.Namespace, home: Path) -> bool:
    """Take the home's leader lease. Another host leading: a tick says so and does nothing;
    a daemon waits as a standby (taking over when that lease expires) until stopped or idle
    for ``--idle-exit`` seconds. False: this process does not lead and should exit."""
    try:
        lease.acquire()
        return True
    except NotLeaderError as exc:
        if args.tick:
            log.info("tick: %s", exc)
            print(f"hpcflow: tick does nothing: {exc}")
            return False
        log.info("standby: %s", exc)
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stopping.update(now=True))
    (home / PID_FILE).write_text(f"{os.getpid()}\n")  # a daemon runs, in standby
    try:
        if wait_for_lease(lease, lambda: stopping["now"], args.idle_exit):
            log.info("the lease expired: this host (%s) leads now", lease.host)
            return True
    finally:
        if lease.mine is None:
            with contextlib.suppress(FileNotFoundError):
                (home / PID_FILE).unlink()
    log.info("standby ends: %s", "stopped" if stopping["now"] else "idle")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcflow.daemon.process")
    parser.add_argument("--home", required=True)
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--tick", action="store_true", help="one full pass, then exit")
    args = parser.parse_args(argv)
    home = Path(args.home)

    # Nothing the daemon writes is for other accounts (step directories, logs, artifacts),
    # and no credential of its environment reaches what it starts (steps, sbatch, ...).
    os.umask(PRIVATE_UMASK)
    credentials_from_env()
    hold_credentials()
    # A reload asked for while starting (`systemctl reload` right after `start`) must not
    # kill the daemon (SIGHUP's default): noted, and done once it serves.
    early_reload: list[bool] = []
    signal.signal(signal.SIGHUP, lambda *_: early_reload.append(True))
    try:
        # before the log file: it creates the home private. From here on the checked real
        # path is used, whatever happens to the path given (a symlink re-pointed, say).
        home = prepare_home(home)
        settings.config["home"] = str(home)
        setup_logging(Path(args.log_file) if args.log_file else None)
        lock_fd = try_lock(home)
        if lock_fd is None:
            if args.tick:
                log.info("tick: a daemon is running, nothing to do")
                print(f"hpcflow: a daemon is running for {home}: tick does nothing")
            else:
                log.info("another engine serves %s: exiting", home)
            return 0
        # the heavy imports only once this process is the engine (many may start at once)
        from hpcflow.daemon.service import Service

        config = load_config(home)
        logging.getLogger().setLevel(config.log_level.upper())
        # one leader host per home, whoever else sees it (login nodes sharing $HOME)
        lease = LeaderLease(home, ttl=config.lease_seconds)
        if not _lead(lease, args, home):
            return 0
        service = Service(home, config=config)
        check_at_start(service.store)  # before anything is written into it
        assert lease.mine is not None
        service.store.claim_leadership(lease.mine.epoch)
        service.lease = lease
    except FencedError as exc:
        return _fenced(exc)
    except StoreError as exc:
        if logging.getLogger().handlers:  # the log says why the daemon is not there
            log.critical("%s", exc)
        print(f"hpcflow: {exc}", file=sys.stderr)
        return 2
    except HpcflowError as exc:
        print(f"hpcflow: {exc}", file=sys.stderr)
        return 2
    if args.tick:
        try:
            passes = service.tick()
        except StoreLostError as exc:
            return _stopped_for(service, home, exc)
        except FencedError as exc:
            return _fenced(exc)
        from hpcflow.cli.render import plural

        said = f"{plural(passes, 'pass', 'passes')} that changed something"
        log.info("tick done (%s)", said)
        print(f"hpcflow: tick done ({said})")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    signal.signal(signal.SIGHUP, lambda *_: service.request_reload())
    if early_reload:
        service.request_reload()
    # `daemon start` waits for this file: it appears once the daemon is ready to serve.
    (home / PID_FILE).write_text(f"{os.getpid()}\n")
    status = StatusWriter(home)
    log.info("engine %d serving %s", os.getpid(), home)
    try:
        service.run(idle_exit=args.idle_exit, on_cycle=status)
    except StoreLostError as exc:
        return _stopped_for(service, home, exc)
    except FencedError as exc:
        return _fenced(exc)
    finally:
        with contextlib.suppress(FileNotFoundError):
            (home / PID_FILE).unlink()
        with contextlib.suppress(FileNotFoundError):
            (home / STATUS_FILE).unlink()
        log.info("engine %d stopped", os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
