"""``hpcflow.privacy.module_command``: hpcflow's processes started from a folder another
account can write import nothing from it, by either form of the command (``-P`` for this
interpreter, the ``-c`` form for another one: here a wrapper script that runs this one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcflow.privacy import module_command

PLANTED = ("json", "argparse", "hpcflow_planted_probe")


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "shared"
    folder.mkdir()
    ledger = tmp_path / "imported"
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"open({str(ledger)!r}, 'a').write({name!r} + chr(10))\n")
    return folder, ledger


def _other_python(tmp_path: Path) -> str:
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o700)
    return str(wrapper)


@pytest.mark.parametrize("which", ["this", "another"])
def test_the_start_folder_is_not_searched(tmp_path, planted, which):
    folder, ledger = planted
    python = sys.executable if which == "this" else _other_python(tmp_path)
    # the control: plain ``-m`` imports what was planted there
    env = {**os.environ, "PYTHONSAFEPATH": ""}  # an outer setting would hide it
    subprocess.run([python, "-m", "hpcflow.daemon.process", "--help"], cwd=folder,
                   capture_output=True, timeout=120, env=env)
    assert "argparse" in ledger.read_text().split()
    ledger.unlink()
    command = module_command(python, "hpcflow.daemon.process")
    assert command[1] == ("-P" if which == "this" and sys.version_info >= (3, 11) else "-c")
    done = subprocess.run([*command, "--help"], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "--home" in done.stdout  # the module ran, with its arguments
    assert not ledger.exists(), ledger.read_text()
