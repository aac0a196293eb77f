"""The daemon's config file: ``$HPCFLOW_CONFIG``, else ``$HPCFLOW_HOME/config.toml``.

Read when the daemon starts and again on SIGHUP. Every key is documented in
``config/README.md`` and shown in ``config/config.example.toml``. An unknown key
or a value of the wrong type is an error that names the file and the key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcflow.errors import HpcflowError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "config.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(HpcflowError):
    """The config file cannot be used as it is."""


@dataclass(frozen=True)
class PollBounds:
    """How often an executor is polled while it has live jobs: ``min`` seconds after a
    submission or a change, backing off to ``max`` while nothing changes."""

    min: float = 0.5
    max: float = 5.0


@dataclass(frozen=True)
class DaemonConfig:
    path: Path | None = None
    log_level: str = "info"
    #: Seconds between wake-ups when no workflow is live (new work wakes it at once).
    idle_interval: float = 30.0
    #: Local steps at once; None: ``$HPCFLOW_LOCAL_PARALLELISM``, else the CPU count.
    local_parallelism: int | None = None
    #: Poll bounds by executor name (``local``; machines later); others get the default.
    poll: dict[str, PollBounds] = field(default_factory=dict)

    def poll_bounds(self, executor: str) -> PollBounds:
        return self.poll.get(executor, PollBounds())


def config_path(home: Path) -> Path:
    value = os.environ.get("HPCFLOW_CONFIG")
    return Path(os.path.expanduser(value)) if value else home / CONFIG_FILE


def _number(table: dict, key: str, where: str, integer: bool = False) -> Any:
    value = table[key]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (integer and not isinstance(value, int)) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{where}.{key} must be {what}, not {value!r}")
    return value


def _check_keys(table: Any, known: tuple[str, ...], where: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([{where}])")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]} (known keys of [{where}]: "
                          f"{', '.join(known)})")
    return table


def _poll_bounds(table: dict, where: str) -> PollBounds:
    default = PollBounds()
    low = float(_number(table, "min_poll_interval", where)) if "min_poll_interval" in table \
        else default.min
    high = float(_number(table, "max_poll_interval", where)) if "max_poll_interval" in table \
        else max(default.max, low)
    if low > high:
        raise ConfigError(f"{where}.min_poll_interval ({low}) is larger than "
                          f"max_poll_interval ({high})")
    return PollBounds(low, high)


def parse_config(data: dict, path: Path | None = None) -> DaemonConfig:
    """A checked ``DaemonConfig`` from the parsed TOML (errors name the key, not the file)."""
    _check_keys(data, ("daemon", "executors"), "the config file")
    daemon = _check_keys(data.get("daemon", {}), ("log_level", "idle_interval"), "daemon")
    level = str(daemon.get("log_level", "info")).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"daemon.log_level must be one of {', '.join(LOG_LEVELS)}, "
                          f"not {daemon['log_level']!r}")
    idle = float(_number(daemon, "idle_interval", "daemon")) if "idle_interval" in daemon \
        else 30.0
    executors = _check_keys(data.get("executors", {}), ("local",), "executors")
    local = _check_keys(executors.get("local", {}),
                        ("parallelism", "min_poll_interval", "max_poll_interval"),
                        "executors.local")
    parallelism = int(_number(local, "parallelism", "executors.local", integer=True)) \
        if "parallelism" in local else None
    return DaemonConfig(path=path, log_level=level, idle_interval=idle,
                        local_parallelism=parallelism,
                        poll={"local": _poll_bounds(local, "executors.local")})


def load_config(home: Path) -> DaemonConfig:
    """The config file of ``home`` (the defaults if there is none)."""
    path = config_path(home)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if os.environ.get("HPCFLOW_CONFIG"):
            raise ConfigError(f"HPCFLOW_CONFIG names {path}, which does not exist") from None
        return DaemonConfig()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_config(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
