"""``hpcflow``: run, submit and follow workflows; read their steps and logs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from hpcflow import __version__
from hpcflow.cli import render
from hpcflow.cli.selection import (
    chosen,
    labels_of,
    selectors,
    step_phase_option,
    workflow_argument,
    workflow_phase_option,
)
from hpcflow.cli.served import say_if_unreachable, say_if_unserved, unserved_note
from hpcflow.errors import HpcflowError
from hpcflow.phases import WORKFLOW_FINAL

FINAL = WORKFLOW_FINAL


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"hpcflow: {message}", err=True)
    sys.exit(code)


class HpcflowGroup(click.Group):
    """Turns errors a user can act on into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HpcflowError as exc:
            fail(str(exc))
        except BrokenPipeError:  # `hpcflow steps WF | head`: the reader has what it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)  # as a shell reports a process killed by SIGPIPE
        except (sqlite3.Error, OSError) as exc:  # the store or the disk: one line, no traceback
            from hpcflow.cli.failure import explain
            from hpcflow.daemon.store import STORE_FILE

            fail(explain(exc, _home_for_errors() / STORE_FILE))


def _home_for_errors() -> Path:
    """``$HPCFLOW_HOME`` as given, for a message (without the checks ``_home`` makes)."""
    import os

    from hpcflow.settings import config

    return Path(os.path.expanduser(str(config.get("home") or os.environ.get("HPCFLOW_HOME")
                                       or "~/.hpcflow")))


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _wf_json(row: Any, counts: dict[str, int] | None = None) -> dict:
    data = {
        "id": row["id"], "name": row["name"], "phase": row["phase"],
        "labels": json.loads(row["labels"] or "{}"), "created_at": row["created_at"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
        "message": row["message"], "suspended": bool(row["suspended"]),
        "pruned_at": row["pruned_at"],
    }
    if counts is not None:
        data["steps"] = counts
    return data


def _io_json(text: str | None, read: Any) -> dict | None:
    """A step's inputs or outputs for ``steps --json``: each parameter value as is, or, for
    one larger than 64 KiB, a summary (``{"elided": {"bytes", "type", "sha256"}}``) unless
    ``read`` is given, which reads it in full (``--values``)."""
    from hpcflow import values

    io = json.loads(text) if text else None
    if not io:
        return io
    show = (lambda v: values.expand(v, read)) if read else values.summary
    shown = dict(io)
    if "parameters" in io:
        shown["parameters"] = {n: show(v) for n, v in (io["parameters"] or {}).items()}
    if "items" in io:  # a loop's items
        shown["items"] = show(io["items"])
    return shown


def _step_json(row: Any, read: Any = None) -> dict:
    return {
        "id": row["id"], "name": row["name"], "key": row["key"], "type": row["type"],
        "phase": row["phase"], "template": row["template"], "parent_id": row["parent_id"],
        "started_at": row["started_at"], "finished_at": row["finished_at"],
        "reason": row["reason"], "attempt": row["attempt"], "log_tail": row["log_tail"],
        "progress": (None if row["progress_total"] is None
                     else {"current": row["progress_current"], "total": row["progress_total"]}),
        "inputs": _io_json(row["inputs"], read),
        "outputs": _io_json(row["outputs"], read),
        "machine": render.machine(row) or None, "job_id": render.job_id(row) or None,
        "step_dir": row["step_dir"], "run_seconds": render.run_seconds(row),
    }


@click.group(cls=HpcflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpcflow")
def main() -> None:
    """Run dflow-style workflows on this machine or an HPC cluster.

    State lives in $HPCFLOW_HOME (default ~/.hpcflow).
    """


#: How often ``--watch`` and ``run`` look whether an engine still serves the home (seconds).
SERVED_CHECK_EVERY = 5.0


def _follow(workflows: list[Any], interval: float = 0.3) -> list[str]:
    """Wait for every workflow; a live progress bar on a terminal, phase lines otherwise.
    Says so (once, and again when it changes) while no engine serves the home."""
    from hpcflow.daemon import client

    home = _home()
    tty = sys.stderr.isatty()
    last: dict[str, str] = {}
    expected: dict[str, int | None] = {}
    said: str | None = None
    checked = 0.0
    while True:
        if time.monotonic() - checked >= SERVED_CHECK_EVERY:
            checked = time.monotonic()
            note = unserved_note(home)
            if note != said and note:
                click.echo(("\n" if tty else "") + note, err=True)
            said = note
        phases = []
        for wf in workflows:
            phase = wf.query_status()
            phases.append(phase)
            counts = client.phase_counts(home, wf.id)
            done = sum(v for k, v in counts.items() if k not in ("Pending", "Running"))
            total = max(sum(counts.values()), expected.setdefault(
                wf.id, client.expected_steps(home, wf.id)) or 0)
            line = f"{wf.id} {phase:<9} {render.progress_bar(done, total)} " \
                   f"{render.counts_text(counts)}"
            if tty:
                click.echo("\r\033[K" + line, err=True, nl=False)
            elif last.get(wf.id) != phase:
                click.echo(line, err=True)
            last[wf.id] = phase
        if all(p in FINAL for p in phases):
            if tty:
                click.echo("", err=True)
            return phases
        time.sleep(interval)


def _submit_script(script: str, as_dflow: bool = False,
                   script_args: tuple[str, ...] = (), quiet: bool = False) -> list[Any]:
    """Run the user's script with ``script_args`` as its ``sys.argv[1:]``; the workflows it
    submitted (none is an error). A script that fails after submitting workflows: their
    ids, then the error (they run on)."""
    from hpcflow.cli.script import ScriptError, run_script
    from hpcflow.workflow import submitted_workflows

    if as_dflow:
        from hpcflow.as_dflow import install

        install()
    before = len(submitted_workflows)
    try:
        if quiet:  # stdout is for the ids alone: the script's own prints go to stderr
            with contextlib.redirect_stdout(sys.stderr):
                run_script(script, script_args)
        else:
            run_script(script, script_args)
    except ScriptError as exc:
        submitted = [wf for wf in submitted_workflows[before:] if wf.is_new]
        if not submitted:
            raise
        # what it submitted runs anyway: say which, so that it can be followed or stopped
        for wf in submitted:
            click.echo(wf.id)
        ids = " ".join(wf._need_id() for wf in submitted)
        fail(f"{exc}; it had submitted {ids}, which run{'s' if len(submitted) == 1 else ''} "
             f"on: 'hpcflow terminate {ids}' stops {'it' if len(submitted) == 1 else 'them'}")
    workflows = submitted_workflows[before:]
    if not workflows:
        fail(f"{script} submitted no workflow (call wf.submit())")
    return workflows


_AS_DFLOW_HELP = "SCRIPT imports dflow: serve those imports from hpcflow (no renaming)."
#: Arguments after SCRIPT that are not this command's own options are the script's
#: (``hpcflow run wf.py input.json --n 3``); after ``--`` every argument is the script's.
_SCRIPT_CONTEXT = {"ignore_unknown_options": True}
_script_args = click.argument("script_args", nargs=-1, type=click.UNPROCESSED)


@main.command(context_settings=_SCRIPT_CONTEXT)
@click.argument("script", type=click.Path(dir_okay=False))
@_script_args
@click.option("--as-dflow", is_flag=True, help=_AS_DFLOW_HELP)
def run(script: str, script_args: tuple[str, ...], as_dflow: bool) -> None:
    """Run SCRIPT [ARGS...], follow every workflow it submits, exit 0 only if all succeed."""
    from hpcflow.workflow import submitted_workflows

    before = len(submitted_workflows)
    try:
        workflows = _submit_script(script, as_dflow, script_args)
        phases = _follow(workflows)
    except KeyboardInterrupt:
        # also while the script still runs: what it submitted so far goes on all the same
        workflows = [wf for wf in submitted_workflows[before:] if wf.id]
        if not workflows:
            click.echo(f"\nhpcflow: interrupted before {script} submitted a workflow", err=True)
            sys.exit(130)
        ids = " ".join(wf.id for wf in workflows)
        watch = "; ".join(f"'hpcflow status {wf.id} --watch'" for wf in workflows)
        click.echo(f"\nhpcflow: stopped following; {ids} go{'es' if len(workflows) == 1 else ''}"
                   f" on in the background: follow with {watch}, stop with "
                   f"'hpcflow terminate {ids}'", err=True)
        sys.exit(130)
    from hpcflow.daemon import client

    for wf, phase in zip(workflows, phases, strict=True):
        click.echo(f"{wf.id} {phase}")
        if phase != "Succeeded":
            row = client.workflow_row(_home(), wf._need_id())
            if row["message"]:
                click.echo(f"  {row['message']}", err=True)
        for tip in client.tips(_home(), wf._need_id()):
            click.echo(f"  tip: {tip}", err=True)
    sys.exit(0 if all(p == "Succeeded" for p in phases) else 1)


@main.command(context_settings=_SCRIPT_CONTEXT)
@click.argument("script", type=click.Path(dir_okay=False))
@_script_args
@click.option("--name", default=None, help="Name the submitted workflow(s) NAME.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label the submitted workflow(s) (repeatable).")
@click.option("--if-absent", is_flag=True,
              help="With --name: do nothing if a workflow of that name is live or succeeded "
                   "(for cron-driven campaigns).")
@click.option("--as-dflow", is_flag=True, help=_AS_DFLOW_HELP)
@click.option("-q", "--quiet", is_flag=True,
              help="Print only the ids on stdout (the script's own output goes to stderr).")
def submit(script: str, script_args: tuple[str, ...], name: str | None,
           labels: tuple[str, ...], if_absent: bool, as_dflow: bool, quiet: bool) -> None:
    """Run SCRIPT [ARGS...] to submit its workflows; print their ids and return. Arguments
    after ``--`` are all the script's (``hpcflow submit wf.py -- --name x``)."""
    from hpcflow.workflow import submit_overrides

    if if_absent and not name:
        fail("--if-absent needs --name: it checks for a workflow of that name")
    submit_overrides.update(name=name, labels=labels_of(labels), if_absent=if_absent)
    try:
        workflows = _submit_script(script, as_dflow, script_args, quiet)
    finally:
        submit_overrides.clear()
    for wf in workflows:
        if wf.is_new:
            click.echo(wf.id)
        else:
            click.echo(f"hpcflow: workflow {wf.name!r} is already there ({wf.id}, "
                       f"{wf.query_status()}): nothing submitted", err=True)
            click.echo(wf.id)


def _watch(workflow: str, interval: float) -> None:
    """A live line (a bar of steps by phase) until WORKFLOW ends; exit 0 only if it succeeded."""
    from hpcflow.workflow import Workflow

    wf = Workflow(id=workflow)
    phase = _follow([wf], interval=interval)[0]
    click.echo(f"{workflow} {phase}")
    sys.exit(0 if phase == "Succeeded" else 1)


@main.command()
@workflow_argument(required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable shape, see README).")
@click.option("--watch", is_flag=True,
              help="Follow WORKFLOW with a live progress bar until it ends (exit 0 if it "
                   "succeeded).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between updates.")
def status(workflow: str | None, as_json: bool, watch: bool, interval: float) -> None:
    """Phase and step counts of WORKFLOW (or of every live workflow)."""
    from hpcflow.daemon import client

    home = _home()
    if watch:
        if workflow is None or as_json:
            fail("--watch follows one workflow and prints text: "
                 + ("drop --json" if as_json else "give WORKFLOW"))
        client.workflow_row(home, workflow)
        _watch(workflow, interval)
    if workflow is None:
        rows = [r for r in client.workflows(home) if r["phase"] in ("Pending", "Running")]
    else:
        rows = [client.workflow_row(home, workflow)]
    data = [_wf_json(r, client.phase_counts(home, r["id"])) for r in rows]
    for d in data:  # a failed chain of 3 shows 2/3, not 2/2 (steps after a failure never come)
        d["expected_steps"] = client.expected_steps(home, d["id"])
        d["tips"] = client.tips(home, d["id"])
    say_if_unserved(home)
    say_if_unreachable(home)
    if as_json:
        click.echo(json.dumps(data[0] if workflow else data, indent=2))
        return
    if not data:
        click.echo("no live workflows")
    for d, r in zip(data, rows, strict=True):
        phase = d["phase"] + (" (suspended)" if d["suspended"] and d["phase"] in
                              ("Pending", "Running") else "")
        click.echo(f"{d['id']}  {phase}  {render.duration(r['started_at'], r['finished_at'])}"
                   f"  steps: {render.counts_text(d['steps'])}"
                   f"{render.of_expected(d['steps'], d['expected_steps'])}")
        if d["message"] and d["phase"] not in ("Running", "Pending", "Succeeded"):
            click.echo(f"  {d['message']}")
        for tip in d["tips"]:
            click.echo(f"  tip: {tip}")


@main.command(name="list")
@click.option("--phase", default=None, callback=workflow_phase_option,
              help="Only workflows in this phase (any case).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Only workflows with this label (repeatable: all must match).")
@click.option("--since", default=None, metavar="AGE",
              help="Only workflows created within AGE (30d, 12h, 90m, ...).")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="At most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable shape, see README).")
def list_(phase: str | None, labels: tuple[str, ...], since: str | None, limit: int | None,
          as_json: bool) -> None:
    """Workflows in this $HPCFLOW_HOME, newest first."""
    from hpcflow.daemon import client

    since_ts = time.time() - client.parse_age(since) if since else None
    home = _home()
    rows = client.workflows(home, phase=phase, limit=limit, since=since_ts,
                            labels=labels_of(labels))
    say_if_unserved(home)
    if as_json:
        click.echo(json.dumps([_wf_json(r) for r in rows], indent=2))
        return
    click.echo(render.table(
        ["ID", "PHASE", "CREATED", "DURATION"],
        [[r["id"], r["phase"], render.when(r["created_at"]),
          render.duration(r["started_at"], r["finished_at"])] for r in rows]))


@main.command()
@workflow_argument()
@click.option("--phase", default=None, callback=step_phase_option,
              help="Only steps in this phase (any case).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (stable shape, see README).")
@click.option("--values", "full_values", is_flag=True,
              help="With --json: every parameter value in full (by default a value over "
                   "64 KiB is summarised as {\"elided\": {\"bytes\", \"type\", \"sha256\"}}).")
def steps(workflow: str, phase: str | None, as_json: bool, full_values: bool) -> None:
    """The steps of WORKFLOW with phase, duration and reason (why a step failed, or what
    its job waits for in a scheduler's queue: such a step is Pending until its job starts)."""
    from hpcflow.daemon import client

    home = _home()
    client.workflow_row(home, workflow)
    if full_values and not as_json:
        fail("--values shows parameter values in the JSON: add --json")
    say_if_unserved(home)
    # streamed: a workflow of 100,000 steps is printed without holding its rows
    if as_json:
        read = client.store_for(home).read_value if full_values else None
        for piece in render.json_array(_step_json(r, read)
                                       for r in client.iter_steps(home, workflow, phase)):
            click.echo(piece, nl=False)
        click.echo()
        return
    for line in render.streamed_table(
            ["ID", "NAME", "KEY", "TYPE", "PHASE", "PROGRESS", "DURATION", "ATTEMPT",
             "MACHINE", "JOB ID", "REASON", "STEP DIR"],
            lambda: ([r["id"], r["name"], r["key"] or "", r["type"], r["phase"],
                      "" if r["progress_total"] is None
                      else f"{r['progress_current']}/{r['progress_total']}",
                      render.step_duration(r), render.attempt(r),
                      render.machine(r), render.job_id(r), r["reason"] or "",
                      r["step_dir"] or ""]
                     for r in client.iter_steps(home, workflow, phase))):
        click.echo(line)
    for r in client.iter_steps(home, workflow, phase):
        if r["log_tail"] and r["phase"] in ("Failed", "Error"):
            click.echo(f"\n--- last lines of the log of {r['name']} (id {r['id']}) ---")
            click.echo(r["log_tail"])


@main.command()
@selectors
@click.option("--reuse-succeeded", is_flag=True,
              help="Reuse the outputs of every succeeded step that has a key.")
@click.option("--reuse", "keys", multiple=True, metavar="KEY",
              help="Reuse the outputs of the step with this key (repeatable).")
def resubmit(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
             older_than: str | None, reuse_succeeded: bool, keys: tuple[str, ...]) -> None:
    """Run each WORKFLOW again as a new workflow; print the new ids, one per line."""
    from hpcflow.daemon import client
    from hpcflow.settings import config

    home = _home()
    for workflow in chosen(home, workflows, labels, phase, older_than, "resubmit"):
        click.echo(client.resubmit(home, workflow, reuse_succeeded, list(keys),
                                   idle_exit=float(config.get("engine_idle_exit") or 600)))


from hpcflow.cli.control_cmds import (  # noqa: E402
    delete,
    gc,
    resume,
    retry,
    stop,
    suspend,
    terminate,
)
from hpcflow.cli.daemon_cmds import daemon  # noqa: E402
from hpcflow.cli.dflow_cmds import dflow_hook  # noqa: E402
from hpcflow.cli.doctor_cmd import doctor  # noqa: E402
from hpcflow.cli.get_cmd import get  # noqa: E402
from hpcflow.cli.graph_cmd import graph  # noqa: E402
from hpcflow.cli.logs_cmd import logs  # noqa: E402
from hpcflow.cli.ssh_cmds import ssh  # noqa: E402
from hpcflow.cli.store_cmds import store  # noqa: E402
from hpcflow.cli.ui_cmd import ui  # noqa: E402

for command in (get, graph, logs, terminate, stop, retry, suspend, resume, delete, gc, daemon,
                doctor, store, ssh, dflow_hook, ui):
    main.add_command(command)


if __name__ == "__main__":
    main()
