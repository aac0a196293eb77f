"""Shell completion of workflow ids (click's: ``eval "$(_HPCFLOW_COMPLETE=bash_source
hpcflow)"``): the ids of this home's workflows, newest first."""

from __future__ import annotations

from typing import Any

from click.shell_completion import CompletionItem

#: At most this many ids are offered (the newest).
OFFERED = 200


def workflow_ids(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Workflow ids starting with ``incomplete`` (``@latest`` for ``@``...); none (never an
    error) if the store cannot be read."""
    if incomplete.startswith("@"):
        from hpcflow.daemon.client import LATEST

        return [CompletionItem(LATEST, help="the newest workflow")] \
            if LATEST.startswith(incomplete) else []
    try:
        from hpcflow.daemon import client
        from hpcflow.settings import home

        rows = client.store_for(home()).workflows(limit=OFFERED)
    except Exception:  # completion must never print a traceback into the shell
        return []
    return [CompletionItem(r["id"], help=r["phase"]) for r in rows
            if str(r["id"]).startswith(incomplete)]
