"""Every example in examples/ runs through ``hpcflow run`` and its outputs are checked."""

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, integrity_ok, run_cli

EXPECTED = {
    "class_op_artifacts.py": ["msg: HelloWorld!", "bar: Hi (copied by step0)"],
    "function_op.py": ["phase: Succeeded", "y: 7.5"],
    "parallel_steps.py": ["total: 14", "parallel steps: 4 distinct processes: 4"],
    "nested_steps.py": ["msg: HELLO! HELLO! HELLO!", "out: QUIET WORDS"],
    "dag.py": ["bottom: 124", "order ok: True"],
    "quickstart.py": ["total: 45", "report: 9 words"],
    "script_templates.py": ["lines: 2", "result: {'square': 4}",
                            "out: HELLO FROM A FILE | it's $HOME; rm -rf /"],
    "loops_slices.py": ["total: 10", "summary: ALPHA: 1; BETA: 2; GAMMA: 3; DELTA: 4",
                        "reports: ['0/report.txt', '1/report.txt', '2/report.txt', "
                        "'3/report.txt']"],
    "reuse.py": ["first total: 14", "second total: 110",
                 "runs of square: ['0', '1', '2', '3', '3']",
                 "reused: ['square-0', 'square-1', 'square-2']"],
    "error_handling.py": ["phase: Succeeded", "retry: 3 attempts", "timeout: Failed",
                          "mostly: 6 of 8 succeeded",
                          "fatal reasons: ['FatalError: 3 is not acceptable', "
                          "'FatalError: 7 is not acceptable']"],
    "dispatcher_executor.py": ["msgs: ['Hello', 'HelloHello', 'HelloHelloHello']",
                               "chars: 30", "bar: HelloHelloHello"],
    "conditions_recursion.py": ["last: 5", "keys: ['iter-0', 'iter-1', 'iter-2', 'iter-3', "
                                "'iter-4']", "skipped: ['again']"],
}


#: Examples that need clusters, run against the test services by their own test.
ELSEWHERE = {"argo_offload.py": "tests/integration/test_argo_offload.py"}


def test_every_example_is_covered():
    found = {p.name for p in EXAMPLES.glob("*.py")}
    assert found == set(EXPECTED) | set(ELSEWHERE), found ^ (set(EXPECTED) | set(ELSEWHERE))


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_runs_through_hpcflow_run(example, tmp_path: Path):
    home = tmp_path / "home"
    result = run_cli(["run", str(EXAMPLES / example)], home, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for line in EXPECTED[example]:
        assert line in result.stdout, result.stdout
    assert "Succeeded" in result.stdout
    listed = json.loads(run_cli(["list", "--json"], home, tmp_path).stdout)
    assert listed and {w["phase"] for w in listed} == {"Succeeded"}
    assert integrity_ok(home)
    run_cli(["daemon", "stop"], home, tmp_path)
