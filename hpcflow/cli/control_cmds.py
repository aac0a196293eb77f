"""Commands that change workflows: ``terminate``, ``retry``, ``suspend``, ``resume``, ``gc``.

State changes go to the engine as requests (it is the one writer); ``gc`` only
removes files of finished workflows and marks them pruned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


def _home() -> Path:
    from hpcflow.settings import home

    return home()


def _request(workflow: str, kind: str, done: str) -> None:
    from hpcflow.daemon import client

    client.request(_home(), workflow, kind)
    click.echo(f"{done} requested for {workflow}")


@click.command()
@click.argument("workflow")
def terminate(workflow: str) -> None:
    """Stop WORKFLOW: cancel its running jobs and mark it Terminated."""
    _request(workflow, "terminate", "terminate")


@click.command()
@click.argument("workflow")
def retry(workflow: str) -> None:
    """Run the failed steps of WORKFLOW again, in the same workflow (succeeded steps keep
    their outputs); the workflow is Running again."""
    _request(workflow, "retry", "retry")


@click.command()
@click.argument("workflow")
def suspend(workflow: str) -> None:
    """Start no new jobs for WORKFLOW (running ones go on) until 'hpcflow resume'."""
    _request(workflow, "suspend", "suspend")


@click.command()
@click.argument("workflow")
def resume(workflow: str) -> None:
    """Let a suspended WORKFLOW start jobs again."""
    _request(workflow, "resume", "resume")


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
    removed = [(0, 0)] * len(rows) if dry_run else prune_workflows(home, rows)
    pruned = [{"id": row["id"], "phase": row["phase"], "finished_at": row["finished_at"],
               "files": files, "artifacts": objects}
              for row, (files, objects) in zip(rows, removed, strict=True)]
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "workflows": pruned}, indent=2))
        return
    verb = "would prune" if dry_run else "pruned"
    for item in pruned:
        detail = "" if dry_run else f" ({item['files']} files, {item['artifacts']} artifacts)"
        click.echo(f"{verb} {item['id']} ({item['phase']}){detail}")
    click.echo(f"{len(pruned)} workflows {verb}" if pruned
               else f"no finished workflow older than {older_than} to prune")
