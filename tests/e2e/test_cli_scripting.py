"""The CLI in scripts: ``submit -q`` prints only ids, arguments after ``--`` are the
script's, a script that raises after submitting still says what it submitted, ``-h`` works
on every command, and click's shell completion completes commands and workflow ids (through
the installed ``hpcflow`` console script, as a shell calls it)."""

import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from hpcflow.cli.main import main
from tests.conftest import run_cli

SCRIPT = '''
import sys
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def one(x: int) -> {"y": int}:
    return {"y": x}

print("the script talks", sys.argv[1:])
wf = Workflow("scripted")
wf.add(Step("s", PythonOPTemplate(one), parameters={"x": 1}))
wf.submit()
if "--boom" in sys.argv:
    raise RuntimeError("broke after submitting")
'''
CONSOLE_SCRIPT = Path(sys.executable).parent / "hpcflow"


def test_submit_quiet_arguments_after_dashes_and_a_script_failing_late(tmp_path: Path):
    home = tmp_path / "home"
    (tmp_path / "wf.py").write_text(SCRIPT)
    try:
        quiet = run_cli(["submit", "-q", "wf.py", "--", "--name", "x", "-h"], home, tmp_path)
        assert quiet.returncode == 0, quiet.stderr
        (wf_id,) = quiet.stdout.splitlines()  # the id alone
        assert wf_id.startswith("scripted-")
        assert "the script talks ['--name', 'x', '-h']" in quiet.stderr
        loud = run_cli(["submit", "wf.py", "plain"], home, tmp_path)
        assert loud.stdout.splitlines()[0] == "the script talks ['plain']"

        late = run_cli(["submit", "-q", "wf.py", "--boom"], home, tmp_path)
        assert late.returncode == 1
        (late_id,) = late.stdout.splitlines()
        err = [line for line in late.stderr.splitlines() if line.startswith("hpcflow: wf.py")]
        assert err == [f"hpcflow: wf.py (line 15): RuntimeError: broke after submitting (set "
                       f"HPCFLOW_TRACEBACK=1 for the traceback); it had submitted {late_id}, "
                       f"which runs on: 'hpcflow terminate {late_id}' stops it"], late.stderr
        listed = run_cli(["list"], home, tmp_path).stdout
        assert late_id in listed
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)


def _commands(group: click.Group, prefix: list[str]) -> list[list[str]]:
    found = []
    for name, command in group.commands.items():
        found.append([*prefix, name])
        if isinstance(command, click.Group):
            found += _commands(command, [*prefix, name])
    return found


def test_dash_h_works_on_every_command(tmp_path: Path):
    commands = _commands(main, [])
    assert ["get"] in commands and ["daemon", "start"] in commands
    runner = CliRunner()  # in process: 40 commands would take a minute as processes
    for words in [[], *commands]:
        shown = runner.invoke(main, [*words, "-h"], prog_name="hpcflow",
                              env={"HPCFLOW_HOME": str(tmp_path / "home")})
        assert shown.exit_code == 0 and shown.output.startswith("Usage: hpcflow"), \
            (words, shown.output)


def test_shell_completion_of_commands_and_workflow_ids(tmp_path: Path):
    home = tmp_path / "home"
    (tmp_path / "wf.py").write_text(SCRIPT)
    wf_id = run_cli(["submit", "-q", "wf.py"], home, tmp_path).stdout.strip()
    try:
        def complete(words: str, index: int) -> list[str]:
            done = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True,
                                  cwd=tmp_path, timeout=60, env=dict(
                                      os.environ, HPCFLOW_HOME=str(home), COMP_WORDS=words,
                                      COMP_CWORD=str(index), _HPCFLOW_COMPLETE="bash_complete"))
            assert done.returncode == 0, done.stderr
            return [line for line in done.stdout.splitlines() if line]

        assert {"plain,status", "plain,steps"} <= set(complete("hpcflow st", 1))
        assert complete("hpcflow get scr", 2) == [f"plain,{wf_id}"]
        assert complete("hpcflow logs nothing-like-it", 2) == []
        assert complete("hpcflow status @l", 2) == ["plain,@latest"]
        source = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True,
                                env=dict(os.environ, _HPCFLOW_COMPLETE="bash_source"))
        assert "_hpcflow_completion()" in source.stdout
    finally:
        run_cli(["daemon", "stop"], home, tmp_path)
