"""``hpcflow logs WF [STEP]``: steps' logs (stdout and stderr), read where their jobs ran;
every step's, prefixed with its name, when no step or a group is named; ``--follow`` while
they run, ``--tail``, ``--grep``."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from hpcflow.cli.selection import workflow_argument
from hpcflow.phases import STEP_FINAL

if TYPE_CHECKING:
    from hpcflow.daemon.step_logs import Selection


def _home() -> Any:
    from hpcflow.settings import home

    return home()


def _fail(message: str) -> None:
    click.echo(f"hpcflow: {message}", err=True)
    sys.exit(1)


class Shown:
    """Prints a step's lines: filtered by ``--grep``, prefixed with its name when several
    steps' logs are shown together."""

    def __init__(self, pattern: re.Pattern[str] | None, prefixed: bool) -> None:
        self.pattern = pattern
        self.prefixed = prefixed

    def lines(self, name: str, lines: list[str]) -> None:
        for line in lines:
            if self.pattern is None or self.pattern.search(line):
                click.echo(f"[{name}] {line}" if self.prefixed else line)


def _kept_tail(row: Any, wf: Any) -> str | None:
    """The last lines the store kept of a step whose directory is gone."""
    if not row["log_tail"]:
        return None
    why = "removed by 'hpcflow gc'" if wf["pruned_at"] else "gone"
    click.echo(f"hpcflow: the log of {row['name']} is {why}: its last lines, kept in the "
               "store, follow", err=True)
    return str(row["log_tail"])


def _read_whole(home: Any, store: Any, row: Any, job: Any, wf: Any
                ) -> tuple[str, str | None, bool]:
    """(where, text or None, whether it is only the kept tail) of a step's log."""
    from hpcflow.daemon import step_logs

    source = step_logs.source(home, store, job)
    try:
        data = source.read(0)
    finally:
        source.close()
    if data is not None:
        return source.where, data.decode(errors="replace"), False
    return source.where, _kept_tail(row, wf), True


@click.command()
@workflow_argument()
@click.argument("step", required=False)
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing what the logs get until their steps end.")
@click.option("--tail", "last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only the last N lines of each log (then, with -f, what comes).")
@click.option("--grep", "grep", default=None, metavar="REGEX",
              help="Only the lines that match REGEX (Python's re).")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05),
              help="With -f: seconds between reads.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"workflow", "step", "name", "phase", "path", "log", "tail"} as '
                   "JSON (a list when several steps are shown).")
def logs(workflow: str, step: str | None, follow: bool, last: int | None, grep: str | None,
         interval: float, as_json: bool) -> None:
    """The log (stdout and stderr) of STEP of WORKFLOW: an id, a key or a name; a loop's or
    a group's name shows its steps' logs, and no STEP every step's, each line prefixed with
    its step's name."""
    from hpcflow.daemon import client, step_logs

    if follow and as_json:
        _fail("--follow prints lines as they come: drop --json")
    try:
        pattern = re.compile(grep) if grep is not None else None
    except re.error as exc:
        _fail(f"--grep {grep!r} is not a regular expression: {exc}")
        return
    home = _home()
    store = client.store_for(home)
    wf = client.workflow_row(home, workflow)
    selection = step_logs.Selection(store.iter_step_outline(wf["id"]), wf["id"], step)
    rows = selection.leaves
    # one step named by its own id, key or name (not a group of one): its log as it is
    single = step is not None and len(rows) == 1 and \
        step in (str(rows[0]["id"]), rows[0]["key"], rows[0]["name"])
    shown = Shown(pattern, prefixed=not single)
    if follow:
        # a group or the whole workflow: steps created meanwhile are followed too, until the
        # workflow has ended
        _follow(home, store, wf, rows, shown, last, interval, None if single else selection)
        return
    found = []
    for row, job in step_logs.iter_selected(rows, store):
        if job is None:
            if single:
                _fail(f"step {step!r} of {wf['id']} has not started (phase {row['phase']}): "
                      "no log yet")
            continue
        where, text, is_tail = _read_whole(home, store, row, job, wf)
        if text is None:
            if single and wf["pruned_at"]:
                _fail(f"the log of {row['name']} was removed by 'hpcflow gc' (the store "
                      "keeps the last lines of failed steps only)")
            if single:
                later = " yet: it comes back when the job ends" \
                    if step_logs.late_logs(home, store, job["executor"]) else ""
                _fail(f"no log file at {where}{later}")
            continue
        lines = step_logs.tail(text.splitlines(), last)
        if as_json:
            if pattern is not None:
                lines = [line for line in lines if pattern.search(line)]
            found.append({"workflow": wf["id"], "step": row["id"], "name": row["name"],
                          "phase": row["phase"], "path": where,
                          "log": "\n".join(lines) + ("\n" if lines else ""), "tail": is_tail})
            continue
        if single and pattern is None and last is None:
            click.echo(text, nl=False)  # as it is, to the byte
        else:
            shown.lines(row["name"], lines)
    if as_json:
        click.echo(json.dumps(found[0] if single and found else found))
    elif not rows:
        click.echo("no steps yet", err=True)


@dataclass
class _Followed:
    """A step's log being followed: where it is read and how far."""

    name: str
    job_id: int | None = None
    source: Any = None
    offset: int = 0
    #: What came after the last newline read.
    pending: bytes = b""


def _follow(home: Any, store: Any, wf: Any, rows: list[Any], shown: Shown, last: int | None,
            interval: float, selection: Selection | None = None) -> None:
    """Print each selected step's log as it grows, until every one of them has ended and
    its log was read once more after. With ``selection`` (a group, or the whole workflow),
    the steps created meanwhile are taken in, and following ends with the workflow.

    Each read touches only the steps still followed: a step whose end was seen, and whose
    log was read after, is not read again (a 10,000-step workflow whose steps have ended
    costs nothing per interval), and new steps come from the rows after the last seen."""
    from hpcflow.daemon import client
    from hpcflow.phases import WORKFLOW_LIVE

    followed: dict[int, _Followed] = {row["id"]: _Followed(row["name"]) for row in rows}
    try:
        while True:
            live = selection is not None and \
                client.workflow_row(home, wf["id"])["phase"] in WORKFLOW_LIVE
            if selection is not None:
                for page in iter(lambda: store.step_outline_page(
                        wf["id"], selection.last_id, 1000), []):
                    for row in selection.more(page):
                        followed[row["id"]] = _Followed(row["name"])
            ids = sorted(followed)
            phases = store.step_states(ids)
            jobs = store.latest_jobs(ids)
            for step_id in ids:
                log = followed[step_id]
                final = phases.get(step_id, ("Error", None))[0] in STEP_FINAL
                job = jobs.get(step_id)
                if job is not None:
                    _read_more(home, store, log, job, last, shown)
                if final:  # ended, and its log read after: nothing more will come
                    if log.pending:
                        shown.lines(log.name, [log.pending.decode(errors="replace")])
                    if log.source is not None:
                        log.source.close()
                    del followed[step_id]
            if not followed and not live:
                return
            time.sleep(interval)
    finally:
        for log in followed.values():
            if log.source is not None:
                log.source.close()


def _read_more(home: Any, store: Any, log: _Followed, job: Any, last: int | None,
               shown: Shown) -> None:
    """Print what a step's log got since the last read (its first read: the last ``last``
    lines); a new job of the step (another attempt) is read from its start."""
    from hpcflow.daemon import step_logs

    if job["id"] != log.job_id:
        if log.source is not None:
            log.source.close()
        log.job_id, log.offset, log.pending = job["id"], 0, b""
        log.source = step_logs.source(home, store, job)
    data = log.source.read(log.offset)
    if not data:
        return
    first = log.offset == 0
    log.offset += len(data)
    lines, log.pending = step_logs.lines_of(data, log.pending)
    if first:
        lines = step_logs.tail(lines, last)
    shown.lines(log.name, lines)
