"""``config/config.example.toml`` shows every key the config loader knows, with its real
default, and cannot drift from it; ``config/README.md``'s tables render and name every key;
the worked examples in ``config/examples/`` load through the real loader and their
resources are accepted by their scheduler (or by dpdispatcher).

The example's convention (its header says it to users): ``key = value`` without a note is
the default; a line ending in ``# default: ...`` or ``# required`` shows an example value; a
table commented out line by line (``# [machines.NAME]``, ``# key = ...``, ``# # prose``) is an
example to copy, and two tables of the same name (``[storage]``) are alternatives. A note
``instead of KEY`` marks a key that replaces KEY (``token_secret`` for ``token_file``).

The keys the loader knows are asked of the loader itself: an unknown key is an error that
lists the known ones."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from hpcflow.config_file import ConfigError, DaemonConfig, load_config, parse_config
from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG = REPO / "config"
EXAMPLE = CONFIG / "config.example.toml"
HEADER = re.compile(r"^\[\s*([A-Za-z0-9_.\-\"]+?)\s*\]\s*(#.*)?$")
KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*(.+)$")
NOTE = re.compile(r"#\s*(default:|required)")
#: Sections whose tables are named (``[machines.NAME]``): a unit is one NAME.
NAMED = ("machines", "dispatchers", "argo", "executors")


def known_keys(table_path: tuple[str, ...], base: dict | None = None) -> set[str]:
    """The keys the loader accepts in the table at ``table_path``: from the error an unknown
    key there gets (``... (known keys of [X]: a, b, c)``)."""
    data: dict[str, Any] = {}
    node = data
    for part in table_path:
        node = node.setdefault(part, {})
    node.update(base or {})
    node["no_such_key_zz"] = 1
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    found = re.search(r"\(known keys of \[[^\]]*\]: ([^)]*)\)", str(caught.value))
    assert found, str(caught.value)
    return {k.strip() for k in found.group(1).split(",")}


def uncommented(text: str) -> list[str]:
    """The example with its commented-out TOML made live: whole commented tables (from
    ``# [...]`` to the next blank line, their ``# # prose`` left as comments) and single
    ``# key = value`` lines."""
    lines, in_table = [], False
    for line in text.splitlines():
        if not line.startswith("#"):
            in_table = False
            lines.append(line)
            continue
        body = line[2:] if line.startswith("# ") else line[1:]
        if body.startswith("["):
            in_table = True
        lines.append(body if in_table or KEY_LINE.match(body) else line)
    return lines


@dataclasses.dataclass
class Unit:
    """One table of the example with its sub-tables (``[machines.a]`` and
    ``[machines.a.resources]``)."""

    key: tuple[str, ...]
    lines: list[str] = dataclasses.field(default_factory=list)

    def own_lines(self) -> list[tuple[int, str, str]]:
        """(index, key, line) of the keys written in the unit's own table (not sub-tables)."""
        found, own = [], False
        for index, line in enumerate(self.lines):
            header = HEADER.match(line.strip())
            if header:
                own = tuple(header.group(1).split(".")) == self.key
                continue
            match = KEY_LINE.match(line.strip())
            if own and match:
                found.append((index, match.group(1), line))
        return found

    def keys(self) -> set[str]:
        """The unit's keys: those of its own table and the names of its sub-tables."""
        subtables = set()
        for line in self.lines:
            header = HEADER.match(line.strip())
            if header:
                parts = tuple(header.group(1).split("."))
                if len(parts) > len(self.key):
                    subtables.add(parts[len(self.key)])
        return {key for _, key, _ in self.own_lines()} | subtables

    def alternatives(self) -> dict[int, str]:
        """Line index -> the key that line replaces (a note ``instead of KEY``)."""
        keys = {key for _, key, _ in self.own_lines()}
        found = {}
        for index, _, line in self.own_lines():
            replaced = re.search(r"#.*\binstead of (\w+)", line)
            if replaced and replaced.group(1) in keys:
                found[index] = replaced.group(1)
        return found

    def data(self, drop: set[int] | frozenset[int] = frozenset()) -> dict:
        return tomllib.loads("\n".join(line for i, line in enumerate(self.lines)
                                       if i not in drop))


def units(lines: list[str]) -> list[Unit]:
    found: list[Unit] = []
    current: Unit | None = None
    for line in lines:
        header = HEADER.match(line.strip())
        if header:
            parts = tuple(header.group(1).split("."))
            key = parts[:2] if parts[0] in NAMED else parts[:1]
            # a table of its own name again ([storage] after [storage]): an alternative
            if current is None or current.key != key or parts == key:
                current = Unit(key)
                found.append(current)
        if current is not None:
            current.lines.append(line)
    return found


EXAMPLE_UNITS = units(uncommented(EXAMPLE.read_text()))


def effective(config: DaemonConfig) -> tuple:
    """What a config does: the parsed config, with ``[storage]`` as the client it makes
    (``storage_client()``: the S3 client's settings, or the local directory)."""
    storage = dict(config.storage)
    kind = storage.pop("kind", "local")
    if kind == "s3":
        from hpcflow.connectors.storage.s3 import S3StorageClient

        made = vars(S3StorageClient(**storage))
        made = {k: v for k, v in made.items() if k not in ("_client", "_client_lock")}
    else:
        made = {"root": storage.get("root")}
    return dataclasses.replace(config, path=None, storage={}), kind, made


def load_text(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DaemonConfig:
    """``text`` as a config file read by the daemon's own loader (``load_config``)."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    monkeypatch.setenv("HPCFLOW_CONFIG", str(path))
    return load_config(tmp_path)


def test_the_example_as_shipped_changes_nothing(tmp_path, monkeypatch):
    loaded = load_text(EXAMPLE.read_text(), tmp_path, monkeypatch)
    assert effective(loaded) == effective(parse_config({}))


@pytest.mark.parametrize("unit", EXAMPLE_UNITS, ids=lambda u: ".".join(u.key))
def test_each_table_of_the_example_loads(unit: Unit, tmp_path, monkeypatch):
    alternatives = unit.alternatives()
    text = "\n".join(line for i, line in enumerate(unit.lines) if i not in alternatives)
    load_text(text, tmp_path, monkeypatch)
    for index, replaced in alternatives.items():  # each alternative in place of its key
        drop = {i for i, key, _ in unit.own_lines() if key == replaced} | \
            (set(alternatives) - {index})
        parse_config(unit.data(drop))


def test_the_example_shows_every_key_the_loader_knows():
    sections = {unit.key[0] for unit in EXAMPLE_UNITS}
    assert sections == known_keys(())
    kinds: dict[tuple[str, ...], tuple[tuple[str, ...], dict]] = {
        ("daemon",): (("daemon",), {}),
        ("executors", "local"): (("executors", "local"), {}),
        ("machines",): (("machines", "m"), {"scheduler": "slurm"}),
        ("dispatchers",): (("dispatchers", "d"), {}),
        ("bohrium",): (("bohrium",), {}),
        ("storage",): (("storage",), {}),
        ("argo",): (("argo", "c"), {}),
    }
    assert {u.key[0] for u in EXAMPLE_UNITS} == {k[0] for k in kinds}
    for kind, (probe, base) in kinds.items():
        shown: set[str] = set()
        for unit in EXAMPLE_UNITS:
            if unit.key[:len(kind)] == kind:
                shown |= unit.keys()
        known = known_keys(probe, base)
        assert shown == known, (f"{'.'.join(kind)}: missing {sorted(known - shown)}, "
                                f"unknown {sorted(shown - known)}")


@pytest.mark.parametrize("unit", EXAMPLE_UNITS, ids=lambda u: ".".join(u.key))
def test_every_value_without_a_note_is_the_default(unit: Unit):
    """Removing such a line changes nothing the loader makes of the table."""
    alternatives = set(unit.alternatives())
    whole = effective(parse_config(unit.data(alternatives)))
    checked = 0
    for index, key, line in unit.own_lines():
        if index in alternatives or NOTE.search(line.split("=", 1)[1]):
            continue
        without = effective(parse_config(unit.data(alternatives | {index})))
        assert without == whole, f"{'.'.join(unit.key)}.{key}: {line.strip()!r} is not the default"
        checked += 1
    noted = [line for _, _, line in unit.own_lines() if NOTE.search(line.split("=", 1)[1])]
    assert checked or noted or unit.key == ("bohrium",)


def test_the_notes_say_what_applies_instead():
    """A ``# default:`` note says what applies; only ``[daemon]`` and ``[executors.local]``
    are live (the rest are examples to copy, commented out)."""
    for line in uncommented(EXAMPLE.read_text()):
        note = re.search(r"#\s*default:(.*)$", line)
        if note:
            assert note.group(1).strip(), line
    live = tomllib.loads(EXAMPLE.read_text())
    assert set(live) == {"daemon", "executors"}


# -- config/README.md ------------------------------------------------------------------

README = (CONFIG / "README.md").read_text()


def markdown_tables(text: str) -> list[list[str]]:
    """Each run of consecutive ``|`` lines (outside code blocks)."""
    tables, current, fenced = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def test_config_readme_tables_render():
    """Every table starts with a header and a separator row (a blank line inside a table
    starts a new one without them, which renders as text) and keeps its column count."""
    tables = markdown_tables(README)
    assert len(tables) >= 5
    for table in tables:
        assert len(table) >= 3, table[0]
        assert re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", table[1].strip()), \
            f"no separator row under {table[0]!r}: a stray blank line above it?"
        width = cells(table[0])
        for row in table:
            assert cells(row) == width, row


def test_config_readme_names_every_key():
    for probe, base in ((("daemon",), {}), (("executors", "local"), {}),
                        (("machines", "m"), {"scheduler": "slurm"}), (("dispatchers", "d"), {}),
                        (("bohrium",), {}), (("storage",), {}), (("argo", "c"), {})):
        for key in known_keys(probe, base):
            assert re.search(rf"`[\w.]*\b{key}`", README), f"{'.'.join(probe)}.{key}"


# -- worked examples -------------------------------------------------------------------

WORKED = sorted((CONFIG / "examples").glob("*.toml"))


def test_there_are_worked_examples_for_each_kind_of_machine():
    assert {p.stem for p in WORKED} >= {"pbs", "lsf", "sge", "bohrium"}
    for path in WORKED:
        assert f"examples/{path.name}" in README, f"config/README.md does not mention {path}"


@pytest.mark.parametrize("path", WORKED, ids=lambda p: p.name)
def test_a_worked_example_loads_and_its_resources_are_accepted(path: Path, tmp_path,
                                                                monkeypatch):
    from hpcflow.connectors.executors.registry import make_scheduler
    from hpcflow.connectors.schedulers.base import JobScript

    config = load_text(path.read_text(), tmp_path, monkeypatch)
    declared = [m for m in config.machines.values() if not m.implicit]
    assert declared or config.dispatchers, path
    for machine in declared:
        step_dir = f"{machine.work_root}/wf-abcde/s-1"
        script = make_scheduler(machine.scheduler).render(JobScript(
            name="hpcflow-wf-abcde-1-0", step_dir=step_dir,
            command=[machine.python or "python3", "-m", "hpcflow.daemon.runner", step_dir],
            prepare=list(machine.prepare), resources=dict(machine.resources)))
        for line in machine.prepare:
            assert line in script
    for name in config.dispatchers:
        check_dispatcher(name, config, tmp_path)


def check_dispatcher(name: str, config: DaemonConfig, home: Path) -> None:
    """The machine dict hpcflow hands dpdispatcher (credentials filled in from [bohrium]),
    and the resources of a step, pass dpdispatcher's own strict check."""
    pytest.importorskip("dpdispatcher")
    from hpcflow.connectors.executors.dispatcher import (
        import_dpdispatcher,
        submission_resources,
    )
    from hpcflow.connectors.executors.dispatcher_machine import dispatcher_machine

    dp = import_dpdispatcher(home)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BOHRIUM_", "BOHR_"))}
    machine = dispatcher_machine(name, config, None, home, None, environ)
    dp.Machine.arginfo().check_value(machine.machine_dict, strict=True)
    resources = submission_resources(machine.resources, {}, 1)
    dp.Resources.arginfo(detail_kwargs=False).check_value(resources, strict=True)
    if machine.context_type in ("Bohrium", "BohriumContext"):
        profile = machine.machine_dict["remote_profile"]
        assert profile["email"] == config.bohrium["username"]
        assert profile["program_id"] == int(config.bohrium["project_id"])
