"""The CLI's argument handling, in-process with click's ``CliRunner``: usage errors, one-line
refusals, and what reaches a script. No engine is started: each case fails, or is checked,
before anything would need one."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from hpcflow.cli.main import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HPCFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_every_command_has_help(runner: CliRunner) -> None:
    listed = runner.invoke(main, ["--help"])
    assert listed.exit_code == 0
    for command in ("run", "submit", "status", "list", "steps", "logs", "resubmit", "retry",
                    "terminate", "gc", "doctor", "daemon", "store", "dflow-hook"):
        assert command in listed.output
        assert runner.invoke(main, [command, "--help"]).exit_code == 0, command


def test_usage_mistakes_exit_2_with_clicks_message(runner: CliRunner) -> None:
    missing = runner.invoke(main, ["steps"])
    assert missing.exit_code == 2 and "Missing argument 'WORKFLOW'" in missing.output
    unknown = runner.invoke(main, ["status", "--colour"])
    assert unknown.exit_code == 2 and "No such option '--colour'" in unknown.output


def test_refusals_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "wf.py").write_text("print('never run')\n")
    absent = runner.invoke(main, ["submit", "wf.py", "--if-absent"])
    assert absent.exit_code == 1
    assert _one_line(absent) == ("hpcflow: --if-absent needs --name: it checks for a "
                                 "workflow of that name")
    label = runner.invoke(main, ["submit", "wf.py", "--name", "x", "--label", "nokey"])
    assert label.exit_code == 1 and _one_line(label) == "hpcflow: --label 'nokey' is not KEY=VALUE"
    age = runner.invoke(main, ["gc", "--older-than", "soon"])
    assert age.exit_code != 0 and "soon" in age.output and "Traceback" not in age.output


def test_a_scripts_own_arguments_reach_it(runner: CliRunner, tmp_path: Path) -> None:
    """Arguments after SCRIPT that are not the command's own are the script's; a script
    that submits nothing is refused in one line (after it ran with its arguments)."""
    (tmp_path / "args.py").write_text("import sys\nprint('ARGS', sys.argv[1:])\n")
    result = runner.invoke(main, ["run", "args.py", "input.json", "--restart", "-n", "3"])
    assert "ARGS ['input.json', '--restart', '-n', '3']" in result.output
    assert result.exit_code == 1, result.output
    assert "hpcflow: args.py submitted no workflow (call wf.submit())" in (
        result.stderr or result.output)
