"""dflow's ``dflow.plugins.bohrium``, as far as it can work without Bohrium's Argo service.

Bohrium jobs run here through dpdispatcher: ``DispatcherExecutor(machine_dict={"batch_type":
"Bohrium", "context_type": "Bohrium", "remote_profile": {...}})``, with the credentials in the
daemon's ``BOHRIUM_*`` variables or the config file's ``[bohrium]`` table (README, "Through
dpdispatcher"). ``config`` is accepted as a dictionary (a script may fill it; the daemon reads
its credentials from the places above, never from a script). What only works on Bohrium's
own Argo deployment (its executor annotations, its Tiefblue artifact storage, job groups) is
refused in one line that says what to use instead.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from hpcflow.errors import HpcflowError

__all__ = ["BohriumContext", "BohriumDatasetsArtifact", "BohriumExecutor", "TiefblueClient",
           "config", "create_job_group", "login"]

#: dflow's Bohrium settings, filled from the same variables; accepted, not read by hpcflow.
config: dict[str, Any] = {
    "bohrium_url": os.environ.get("BOHRIUM_BOHRIUM_URL", "https://bohrium.dp.tech"),
    "username": os.environ.get("BOHRIUM_USERNAME"),
    "phone": os.environ.get("BOHRIUM_PHONE"),
    "password": None,  # never copied out of the environment into a script's dictionary
    "authorization": None,
    "project_id": os.environ.get("BOHRIUM_PROJECT_ID"),
    "tiefblue_url": os.environ.get("BOHRIUM_TIEFBLUE_URL", "https://tiefblue.dp.tech"),
    "ticket": None,
    "upload_progress": False,
    "access_key": None,
    "openapi_url": os.environ.get("BOHRIUM_OPENAPI_URL", "https://openapi.dp.tech"),
    "app_key": None,
}

_INSTEAD = ("run Bohrium jobs with DispatcherExecutor(machine_dict={'batch_type': 'Bohrium', "
            "'context_type': 'Bohrium', ...}) and BOHRIUM_* variables (see hpcflow's README)")


def _refuse(what: str, why: str) -> NoReturn:
    raise HpcflowError(f"dflow.plugins.bohrium.{what} is not supported by hpcflow ({why}): "
                       f"{_INSTEAD}")


class BohriumExecutor:
    """Refused: it annotates templates for Bohrium's Argo deployment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("BohriumExecutor", "it annotates steps for Bohrium's own Argo service")


class BohriumContext:
    """Refused: it renders templates for Bohrium's Argo deployment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("BohriumContext", "it renders steps for Bohrium's own Argo service")


class TiefblueClient:
    """Refused: artifacts go to hpcflow's storage (a local directory or S3)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("TiefblueClient", "artifacts go to hpcflow's local or S3 storage; configure "
                "[storage] or s3_config")


class BohriumDatasetsArtifact:
    """Refused: Bohrium datasets are mounted by Bohrium's Argo service."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse("BohriumDatasetsArtifact", "Bohrium datasets are mounted by its Argo service")


def login(*args: Any, **kwargs: Any) -> NoReturn:
    """Refused: the daemon logs in with its own BOHRIUM_* credentials."""
    _refuse("login", "the daemon logs in to Bohrium itself, with its BOHRIUM_* credentials")


def create_job_group(*args: Any, **kwargs: Any) -> NoReturn:
    """Refused: dpdispatcher makes Bohrium's job groups."""
    _refuse("create_job_group", "dpdispatcher makes the job group of each submission")
