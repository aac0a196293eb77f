"""README's command-line table and the CLI agree: every command (and subcommand) has a
row, every option a command takes is named in its row, and no row names an option or a
command that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import click

from hpcflow.cli.main import main

README = Path(__file__).resolve().parents[2] / "README.md"
#: Options every command has, documented once under the table.
EVERYWHERE = {"--help"}


def _table_rows() -> list[str]:
    text = README.read_text()
    section = text[text.index("## The command line"):]
    rows = []
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append(line)
    return [r for r in rows if not r.startswith("| command") and not r.startswith("| ---")]


def _commands() -> dict[str, click.Command]:
    """``"retry"`` and ``"daemon start"`` -> the click command."""
    found: dict[str, click.Command] = {}
    for name, command in main.commands.items():  # type: ignore[attr-defined]
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                found[f"{name} {sub_name}"] = sub
        else:
            found[name] = command
    return found


def _row_of(command: str, rows: list[str]) -> str:
    """The row documenting ``command``: the first cell names it (``hpcflow retry``, or as
    one of ``a / b / c`` after its group's name)."""
    group, _, sub = command.partition(" ")
    for row in rows:
        first = row.split(" | ", 1)[0]
        words = re.findall(r"[a-z][a-z-]+", first)
        if not sub and re.search(rf"(hpcflow |` / `){re.escape(group)}\b", first):
            return row
        if sub and f"hpcflow {group} " in first and sub in words:
            return row
    raise AssertionError(f"README's command table has no row for 'hpcflow {command}'")


def _options(command: click.Command) -> list[list[str]]:
    """Each option's spellings (``["-f", "--follow"]``), ``--help`` left out."""
    return [param.opts + param.secondary_opts for param in command.params
            if isinstance(param, click.Option) and not EVERYWHERE & set(param.opts)]


def _long_options(command: click.Command) -> set[str]:
    return {opt for spellings in _options(command) for opt in spellings if opt.startswith("--")}


def test_every_command_has_a_row_that_names_each_of_its_options() -> None:
    rows = _table_rows()
    missing = []
    for name, command in sorted(_commands().items()):
        row = _row_of(name, rows)
        if "SELECTORS" in row.split(" | ", 1)[0]:
            row += " --label --phase --older-than"
        missing += ["/".join(spellings) + f" of {name}" for spellings in _options(command)
                    if not any(re.search(rf"(?<![\w-]){re.escape(opt)}\b", row)
                               for opt in spellings)]
    assert not missing, f"options the README's table does not name: {missing}"


def test_no_row_names_an_option_that_does_not_exist() -> None:
    every = set().union(*(_long_options(c) for c in _commands().values())) | EVERYWHERE
    named = {opt for row in _table_rows() for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]+",
                                                                 row.split(" | ", 1)[0])}
    assert named <= every, f"options in the table that no command has: {named - every}"
