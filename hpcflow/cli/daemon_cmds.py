"""``hpcflow daemon start | stop | restart | status | run | tick | logs``."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from hpcflow.cli import render


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _fail(message: str) -> None:
    click.echo(f"hpcflow: {message}", err=True)
    sys.exit(1)


@click.group()
def daemon() -> None:
    """The engine that runs the workflows of this $HPCFLOW_HOME (one per home)."""


@daemon.command(name="run")
@click.option("--idle-exit", type=float, default=None, help="Exit after this many idle seconds.")
def daemon_run(idle_exit: float | None) -> None:
    """Run in the foreground, logging to stderr (for systemd: Type=simple)."""
    from hpcflow.daemon.process import main as process_main

    args = ["--home", str(_home())]
    if idle_exit is not None:
        args += ["--idle-exit", str(idle_exit)]
    sys.exit(process_main(args))


@daemon.command(name="tick")
def daemon_tick() -> None:
    """One full pass (take submissions, collect finished jobs, submit ready steps), then exit.

    For cron or scrontab where login nodes forbid long-running processes; does nothing while
    a daemon runs. Logs to $HPCFLOW_HOME/logs/daemon.log; prints one summary line."""
    from hpcflow.daemon.process import main as process_main

    home = _home()
    sys.exit(process_main(["--home", str(home), "--tick",
                           "--log-file", str(home / "logs" / "daemon.log")]))


@daemon.command(name="start")
def daemon_start() -> None:
    """Start the daemon in the background (log: $HPCFLOW_HOME/logs/daemon.log)."""
    from hpcflow.daemon.engine import engine_pid, start_engine, start_lock, wait_for_lock
    from hpcflow.daemon.process import PID_FILE
    from hpcflow.daemon.store import prepare_home

    home = _home()
    prepare_home(home)
    with start_lock(home):  # not while a submission starts one
        pid = engine_pid(home)
        if pid is not None:
            click.echo(f"a daemon is already running for {home} (pid {pid})")
            return
        proc = start_engine(home, idle_exit=None)
        wait_for_lock(home, proc, timeout=15)
    deadline = time.time() + 15
    while time.time() < deadline:
        if engine_pid(home) == proc.pid and (home / PID_FILE).exists():
            click.echo(f"daemon started (pid {proc.pid}); log: {home / 'logs' / 'daemon.log'}")
            return
        if proc.poll() is not None:
            out = (home / "logs" / "daemon.out").read_text(errors="replace").strip()
            last = out.splitlines()[-1] if out else f"the daemon exited with {proc.returncode}"
            _fail(last.removeprefix("hpcflow: "))
        time.sleep(0.05)
    _fail(f"the daemon (pid {proc.pid}) did not take the lock within 15 s: see "
          f"{home / 'logs' / 'daemon.log'}")


def _stop(home: Path) -> bool:
    """SIGTERM the daemon and wait for it; False if none ran."""
    from hpcflow.daemon.engine import engine_pid

    pid = engine_pid(home)
    if pid is None or pid < 0:
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if engine_pid(home) is None:
            return True
        time.sleep(0.05)
    _fail(f"the daemon (pid {pid}) did not stop within 10 s")
    return True


@daemon.command(name="stop")
def daemon_stop() -> None:
    """Stop the daemon; running jobs keep running and the next daemon picks them up."""
    home = _home()
    click.echo("daemon stopped" if _stop(home) else f"no daemon runs for {home}")


@daemon.command(name="restart")
@click.pass_context
def daemon_restart(ctx: click.Context) -> None:
    """Stop the daemon if it runs, then start it."""
    _stop(_home())
    ctx.invoke(daemon_start)


def _leader(home: Path) -> dict | None:
    """The home's leader lease (host, pid, epoch, beat, at, released), if any."""
    from dataclasses import asdict

    from hpcflow.daemon.leader import LEADER_DIR, current_lease

    lease = current_lease(home / LEADER_DIR)
    return asdict(lease) if lease else None


@daemon.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def daemon_status(as_json: bool) -> None:
    """Pid, uptime, version, live workflows and jobs, last poll per executor; exits 1 if no
    daemon runs."""
    from hpcflow.cli.served import unreachable_lines
    from hpcflow.daemon import client
    from hpcflow.daemon.engine import engine_pid, read_status

    home = _home()
    pid = engine_pid(home) if home.exists() else None
    info = (read_status(home) or {}) if pid else {}
    store = client.store_for(home) if (home / "store.db").exists() else None
    data = {
        "running": pid is not None, "pid": pid, "home": str(home),
        "version": info.get("version"), "started_at": info.get("started_at"),
        "last_poll": info.get("last_poll", {}),
        "queue_limits": info.get("queue_limits", {}),
        "submissions": info.get("submissions", {}),
        "poll_backoff": info.get("poll_backoff", {}),
        "live_workflows": store.count_live_workflows() if store else 0,
        "live_jobs": len(store.live_jobs()) if store else 0,
        "problem": info.get("problem"), "problem_since": info.get("problem_since"),
        "unreachable": info.get("unreachable") or {},
        "leader": _leader(home),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif pid is None:
        click.echo(f"no daemon runs for {home} on this host")
        if data["leader"] and not data["leader"]["released"]:
            lead = data["leader"]
            click.echo(f"  the leader of this home is host {lead['host']} (pid {lead['pid']}), "
                       f"last beat {render.when(lead['at'])}")
    else:
        click.echo(f"daemon running (pid {pid}) for {home}")
        click.echo(f"  version {data['version']}, up {render.duration(data['started_at'], None)}")
        click.echo(f"  {data['live_workflows']} live workflows, {data['live_jobs']} live jobs")
        for name, at in sorted(data["last_poll"].items()):
            click.echo(f"  last poll of {name}: {render.when(at)}")
        for name, sent in sorted(data["submissions"].items()):
            limit = sent["per_minute_limit"]
            click.echo(f"  submissions to {name}: {sent['last_minute']} in the last minute "
                       f"({f'limit {limit}' if limit else 'no limit'}), {sent['live']} jobs "
                       "in its queue")
        for name, held in sorted(data["queue_limits"].items()):
            click.echo(f"  {name}: max_jobs lowered to {held['max_jobs']} (of "
                       f"{held['configured']}) since {render.when(held['since'])}: "
                       f"{held['reason']}")
        for name, slow in sorted(data["poll_backoff"].items()):
            why = (f"a scheduler call was killed at its timeout after {slow['call_seconds']} s"
                   if slow["timed_out"] else f"a scheduler call took {slow['call_seconds']} s")
            click.echo(f"  polls of {name} back off: every {slow['backoff']:.0f} s at most "
                       f"({why})")
        for line in unreachable_lines(data):
            click.echo(f"  {line}")
        if data["problem"]:
            click.echo(f"  problem since {render.when(data['problem_since'])}: "
                       f"{data['problem']}")
    sys.exit(0 if pid is not None else 1)


@daemon.command(name="logs")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def daemon_logs(lines: int, follow: bool) -> None:
    """The daemon's log ($HPCFLOW_HOME/logs/daemon.log)."""
    path = _home() / "logs" / "daemon.log"
    if not path.exists():
        _fail(f"no daemon log at {path} yet")
    with open(path, errors="replace") as f:
        for line in f.readlines()[-lines:]:
            click.echo(line, nl=False)
        while follow:
            line = f.readline()
            if line:
                click.echo(line, nl=False)
            else:
                time.sleep(0.5)
