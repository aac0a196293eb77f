"""Commands that change workflows: ``terminate``, ``stop``, ``retry``, ``suspend``, ``resume`` (on
several workflows and selectors), ``delete`` and ``gc``.

State changes go to the engine as requests (it is the one writer); ``gc`` only removes
files of finished workflows and marks them pruned; ``delete`` prunes finished workflows,
then removes their records.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from hpcflow.cli import render
from hpcflow.cli.selection import chosen, selectors


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _request_all(kind: str, done: str, workflows: tuple[str, ...], labels: tuple[str, ...],
                 phase: str | None, older_than: str | None) -> None:
    """Ask the engine for ``kind`` on each workflow chosen. One named by its id that the
    request does not fit is an error (said, then the others go on; exit 1); one a selector
    matched is skipped and counted (``terminate --label campaign=x`` leaves the finished
    ones alone)."""
    from hpcflow.daemon import client
    from hpcflow.errors import HpcflowError

    home = _home()
    command = kind.replace("_", "-")
    ids = chosen(home, workflows, labels, phase, older_than, command)
    named = set(workflows)
    failed = skipped = 0
    for wf_id in ids:
        if wf_id not in named and client.why_not(kind, client.workflow_row(home, wf_id)):
            skipped += 1
            continue
        try:
            client.request(home, wf_id, kind)
        except HpcflowError as exc:
            if len(ids) == 1:
                raise
            click.echo(f"hpcflow: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"{done} requested for {wf_id}")
    if not ids or skipped == len(ids):
        matched = f" ({skipped} matched, none in a phase to {command})" if skipped else ""
        click.echo(f"hpcflow: no workflow to {command}{matched}", err=True)
    elif skipped:
        click.echo(f"{render.plural(skipped, 'matched workflow')} skipped "
                   f"(nothing to {command})", err=True)
    if failed:
        sys.exit(1)


@click.command()
@selectors
def terminate(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
              older_than: str | None) -> None:
    """Stop WORKFLOW...: cancel their running jobs and mark them Terminated."""
    _request_all("terminate", "terminate", workflows, labels, phase, older_than)


@click.command()
@selectors
def stop(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
         older_than: str | None) -> None:
    """As terminate, but each workflow's exit handler (on_exit=) runs, as Argo's stop."""
    _request_all("stop", "stop", workflows, labels, phase, older_than)


@click.command()
@selectors
@click.option("--step", "steps", multiple=True, metavar="NAME|KEY|ID",
              help="Only these failed steps (repeatable; a loop's name: its failed items), "
                   "as dflow's retry_steps; one WORKFLOW.")
@click.option("--restart-successful", is_flag=True,
              help="With --step: run the chosen steps again even if they succeeded (as "
                   "Argo's), and plan anew every step that used their outputs.")
def retry(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
          older_than: str | None, steps: tuple[str, ...], restart_successful: bool) -> None:
    """Run the failed steps of WORKFLOW... (Failed, Error or Terminated) again, in the same
    workflows (succeeded steps keep their outputs); they are Running again."""
    from hpcflow.errors import HpcflowError

    if restart_successful and not steps:
        raise HpcflowError("--restart-successful needs --step NAME: which succeeded steps to "
                           "run again")
    if not steps:
        _request_all("retry", "retry", workflows, labels, phase, older_than)
        return
    from hpcflow.daemon import client

    if len(workflows) != 1 or labels or phase or older_than:
        raise HpcflowError("retry --step chooses steps of one workflow: give one WORKFLOW id "
                           "and no selector")
    home = _home()
    wf_row = client.workflow_row(home, workflows[0])
    wf_id = wf_row["id"]
    if restart_successful:
        why = client.why_not("restart_steps", wf_row)
        if why:
            raise HpcflowError(why)
    wanted_phases = {"Failed", "Error", *(["Succeeded"] if restart_successful else [])}
    outline = list(client.store_for(home).iter_step_outline(wf_id))
    chosen_ids: list[int] = []
    for wanted in steps:
        found = _named_steps(outline, wf_id, wanted)
        again = [r["id"] for r in found if r["phase"] in wanted_phases]
        if not again:
            phases = sorted({r["phase"] for r in found})
            hint = ("; --restart-successful runs succeeded steps again"
                    if "Succeeded" in phases and not restart_successful else "")
            raise HpcflowError(f"step {wanted!r} of {wf_id} has no "
                               f"{'step' if restart_successful else 'failed step'} to run "
                               f"again ({', '.join(phases)}){hint}")
        chosen_ids += [i for i in again if i not in chosen_ids]
    if restart_successful:
        client.request(home, wf_id, "restart_steps", {"steps": chosen_ids})
    else:
        client.retry_steps(home, wf_id, chosen_ids)
    click.echo(f"{'restart' if restart_successful else 'retry'} of "
               f"{render.plural(len(chosen_ids), 'step')} requested for {wf_id}")


def _named_steps(outline: list, wf_id: str, wanted: str) -> list:
    """The step ``wanted`` (id, key or name) names; a group's name: its leaf steps."""
    from hpcflow.daemon import step_logs

    by_name = [r for r in outline if str(r["id"]) == wanted or r["key"] == wanted
               or r["name"] == wanted]
    leaves = [r for r in by_name if r["type"] == step_logs.LEAF]
    if not leaves and any(not r["parent_id"] for r in by_name):  # the root: every step
        return step_logs.select(outline, wf_id, None)
    return leaves or step_logs.select(outline, wf_id, wanted)


@click.command()
@selectors
def suspend(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
            older_than: str | None) -> None:
    """Start no new jobs for WORKFLOW... (running ones go on) until 'hpcflow resume'."""
    _request_all("suspend", "suspend", workflows, labels, phase, older_than)


@click.command()
@selectors
def resume(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
           older_than: str | None) -> None:
    """Let suspended WORKFLOW... start jobs again."""
    _request_all("resume", "resume", workflows, labels, phase, older_than)


@click.command()
@selectors
@click.option("--force", is_flag=True,
              help="Live workflows too: terminated first (their jobs cancelled), then deleted.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def delete(workflows: tuple[str, ...], labels: tuple[str, ...], phase: str | None,
           older_than: str | None, force: bool, dry_run: bool) -> None:
    """Remove WORKFLOW... for good: records (status, steps, events), step directories and
    artifacts (but those a kept workflow still uses). A live workflow is refused unless
    --force, which terminates it first."""
    from hpcflow.daemon import client
    from hpcflow.daemon.prune import prune_workflows
    from hpcflow.errors import HpcflowError
    from hpcflow.phases import WORKFLOW_LIVE

    home = _home()
    ids = chosen(home, workflows, labels, phase, older_than, "delete")
    rows = [client.workflow_row(home, wf_id) for wf_id in ids]
    live = [r["id"] for r in rows if r["phase"] in WORKFLOW_LIVE]
    if live and not force:
        raise HpcflowError(f"{', '.join(live)} {'is' if len(live) == 1 else 'are'} live: "
                           "'hpcflow terminate' first, or delete --force (which does)")
    if dry_run:
        for row in rows:
            click.echo(f"would delete {row['id']} ({row['phase']})")
        click.echo(f"{render.plural(len(rows), 'workflow')} would be deleted")
        return
    for wf_id in live:
        client.request(home, wf_id, "terminate")
    store = client.store_for(home)
    deadline = time.time() + TERMINATE_WAIT
    while live and time.time() < deadline:
        live = [w for w in live if client.workflow_row(home, w)["phase"] in WORKFLOW_LIVE]
        time.sleep(0.3)
    if live:
        raise HpcflowError(f"{', '.join(live)} did not end within {TERMINATE_WAIT:.0f} s of "
                           "being terminated (is the engine running? 'hpcflow daemon status')")
    rows = [client.workflow_row(home, wf_id) for wf_id in ids]  # as terminated
    prune_workflows(home, [r for r in rows if not r["pruned_at"]])
    for row in rows:
        store.delete_workflow(row["id"])
        click.echo(f"deleted {row['id']} ({row['phase']})")


#: How long ``delete --force`` waits for the workflows it terminates to end (seconds).
TERMINATE_WAIT = 120.0


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE",
              help="Prune workflows that finished longer ago than AGE (30d, 12h, 2w, ...).")
@click.option("--dry-run", is_flag=True, help="Only list what would be pruned.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gc(older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove the step directories and artifacts of finished workflows, keeping their
    records (status, steps, parameters stay readable; artifacts can no longer be
    downloaded and the workflow can no longer be retried). Artifacts that a kept workflow
    reuses stay until it is pruned too."""
    from hpcflow.daemon import client
    from hpcflow.daemon.prune import prune_workflows

    home = _home()
    cutoff = time.time() - client.parse_age(older_than)
    rows = [r for r in client.store_for(home).workflows(finished_before=cutoff)
            if not r["pruned_at"]]
    # a dry run counts nothing (it removes nothing): its counts are null, not 0
    removed: list[tuple[int | None, int | None]] = [(None, None)] * len(rows) if dry_run \
        else list(prune_workflows(home, rows))
    pruned = [{"id": row["id"], "phase": row["phase"], "finished_at": row["finished_at"],
               "files": files, "artifacts": objects}
              for row, (files, objects) in zip(rows, removed, strict=True)]
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "workflows": pruned}, indent=2))
        return
    for item in pruned:
        if dry_run:
            click.echo(f"would prune {item['id']} ({item['phase']})")
        else:
            click.echo(f"pruned {item['id']} ({item['phase']}) ({item['files']} files, "
                       f"{item['artifacts']} artifacts)")
    count = render.plural(len(pruned), "workflow")
    click.echo((f"{count} would be pruned" if dry_run else f"{count} pruned") if pruned
               else f"no finished workflow older than {older_than} to prune")
