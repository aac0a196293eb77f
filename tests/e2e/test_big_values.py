"""Large parameter values are stored once (by digest), travel as one file per step
directory, keep their meaning on the way (text, JSON, pickles, loops over them, lists of
them) and stay out of ``hpcflow steps --json`` unless asked for."""

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import List

from hpcflow import Step, Workflow
from hpcflow.python import OP, BigParameter, PythonOPTemplate
from tests.conftest import run_cli

N = 300_000  # characters: each value below is well over the 64 KiB kept inline


@OP.function
def make(n: int) -> {"blob": str, "table": dict, "numbers": str, "pairs": tuple,
                     "chunks": List[str]}:
    return {"blob": "b" * n, "table": {f"k{i}": i for i in range(n // 10)},
            "numbers": json.dumps(list(range(n // 5))), "pairs": tuple(range(n // 5)),
            "chunks": [c * 40_000 for c in "xyz"]}


@OP.function
def use(blob: str, table_text: str, numbers: List[int], pairs: tuple) -> {"summary": str}:
    table = json.loads(table_text)
    return {"summary": f"{len(blob)} {len(table)} {len(numbers)} {numbers[-1]} {len(pairs)} "
                       f"{pairs[-1]}"}


@OP.function
def grow(x: str) -> {"big": str}:
    return {"big": x * 3}


@OP.function
def join(parts: List[str]) -> {"total": int, "heads": str}:
    return {"total": sum(len(p) for p in parts), "heads": "".join(p[0] for p in parts)}


@OP.function
def big_out(n: int) -> {"small": BigParameter(str)}:
    return {"small": "s" * n}


def rows(home: Path, sql: str) -> list:
    conn = sqlite3.connect(home / "store.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_large_values_are_stored_once_and_passed_as_one_file(hpc_home, tmp_path) -> None:
    wf = Workflow("big-values")
    made = Step("make", PythonOPTemplate(make), parameters={"n": N})
    used = Step("use", PythonOPTemplate(use), parameters={
        "blob": made.outputs.parameters["blob"], "table_text": made.outputs.parameters["table"],
        "numbers": made.outputs.parameters["numbers"], "pairs": made.outputs.parameters["pairs"]})
    grown = Step("grow", PythonOPTemplate(grow), parameters={"x": "{{item}}"},
                 with_param=made.outputs.parameters["chunks"])
    joined = Step("join", PythonOPTemplate(join),
                  parameters={"parts": grown.outputs.parameters["big"]})
    tiny = Step("tiny", PythonOPTemplate(big_out), parameters={"n": 10})
    wf.add([made, tiny])
    wf.add([used, grown])
    wf.add(joined)
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"

    # meaning kept: text, a dict given to a str input (its JSON), JSON text given to a
    # List[int] input (decoded), a pickled tuple, a loop over a large list, and the list of
    # the loop's large outputs
    assert wf.query_step(name="use")[0].outputs.parameters["summary"].value == \
        f"{N} {N // 10} {N // 5} {N // 5 - 1} {N // 5} {N // 5 - 1}"
    assert wf.query_step(name="join")[0].outputs.parameters["total"].value == 3 * 120_000
    assert wf.query_step(name="join")[0].outputs.parameters["heads"].value == "xyz"
    assert wf.query_step(name="make")[0].outputs.parameters["blob"].value == "b" * N

    # once in the store: one row per distinct value; no step row holds one (values up to
    # 64 KiB, such as the loop's 40 kB items, stay inline)
    stored = rows(hpc_home, "SELECT sha256, bytes FROM parameter_values")
    blob_sha = hashlib.sha256(b"b" * N).hexdigest()
    assert (blob_sha, N) in stored
    assert len(stored) == len({s for s, _ in stored})
    largest_row = rows(hpc_home, "SELECT max(max(length(inputs), length(coalesce(outputs, ''))))"
                                 " FROM steps")[0][0]
    assert largest_row < 65536
    assert rows(hpc_home, "SELECT max(length(spec)) FROM workflows")[0][0] < 65536
    # a BigParameter output is kept by digest even when small
    assert (hashlib.sha256(b"s" * 10).hexdigest(), 10) in stored

    # once in each step directory: the parameter file is the value, step.json and
    # result.json only name it
    runs = hpc_home / "runs" / wf.id
    make_dir = next(runs.glob("make-*"))
    use_dir = next(runs.glob("use-*"))
    assert (make_dir / "outputs" / "parameters" / "blob").read_text() == "b" * N
    assert (use_dir / "inputs" / "parameters" / "blob").read_text() == "b" * N
    assert json.loads((use_dir / "inputs" / "parameters" / "table_text").read_text()) == \
        {f"k{i}": i for i in range(N // 10)}
    assert (make_dir / "result.json").stat().st_size < 8192
    assert (use_dir / "step.json").stat().st_size < 65536

    # steps --json keeps its keys and shows values up to 64 KiB (the loop's three 40 kB
    # items), the larger ones summarised; --values gives them all
    shown = run_cli(["steps", wf.id, "--json"], hpc_home, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout) < 3 * 40_000 + 20_000
    by_name = {s["name"]: s for s in json.loads(shown.stdout)}
    blob = by_name["make"]["outputs"]["parameters"]["blob"]
    assert blob == {"elided": {"bytes": N, "type": "str", "sha256": blob_sha}}
    assert set(by_name["use"]["inputs"]["parameters"]) == {"blob", "table_text", "numbers",
                                                          "pairs"}
    full = run_cli(["steps", wf.id, "--json", "--values"], hpc_home, tmp_path)
    assert full.returncode == 0, full.stderr
    by_name = {s["name"]: s for s in json.loads(full.stdout)}
    assert by_name["make"]["outputs"]["parameters"]["blob"] == "b" * N
    assert by_name["join"]["inputs"]["parameters"]["parts"] == [c * 120_000 for c in "xyz"]


WARNED = '''
from hpcflow import Step, Workflow
from hpcflow.python import OP, BigParameter, PythonOPTemplate

@OP.function
def plain(text: str) -> {"out": str}:
    return {"out": text + "!"}

@OP.function
def meant(text: BigParameter(str)) -> {"out": BigParameter(str)}:
    return {"out": text + "!"}

size = 17 * 2**20  # over the 16 MiB that earns a warning
wf = Workflow("warned")
wf.add([Step("plain", PythonOPTemplate(plain), parameters={"text": "p" * size}),
        Step("meant", PythonOPTemplate(meant), parameters={"text": "m" * size})])
wf.submit()
'''


def test_a_very_large_parameter_is_warned_about_unless_declared_big(tmp_path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "warned.py"
    script.write_text(WARNED)
    ran = run_cli(["run", str(script)], home, tmp_path)
    assert ran.returncode == 0, ran.stderr
    # at submission: the constant given to a plain parameter, with what to do instead
    warnings = [line for line in ran.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, ran.stderr
    assert "step 'plain' parameter 'text' is 17.0 MiB" in warnings[0]
    assert "upload_artifact" in warnings[0] and "BigParameter" in warnings[0]
    # at run time: in the log of the step whose output is that large
    wf_id = ran.stdout.split()[0]
    runs = home / "runs" / wf_id
    plain_log = next(runs.glob("plain-*")).joinpath("log.txt").read_text()
    assert "warning: output parameter 'out' of step 'plain' is 17.0 MiB" in plain_log
    assert "Artifact" in plain_log and "BigParameter" in plain_log
    assert "warning" not in next(runs.glob("meant-*")).joinpath("log.txt").read_text()


def test_large_values_through_dpdispatcher(hpc_home) -> None:
    """dpdispatcher jobs get the value as their parameter file (forwarded with the step's
    files) and return large outputs inline; the store keeps each once all the same."""
    from hpcflow.connectors.dispatcher import DispatcherExecutor

    shell = DispatcherExecutor(machine_dict={"batch_type": "Shell",
                                             "context_type": "LocalContext"})
    wf = Workflow("big-dispatcher")
    made = Step("make", PythonOPTemplate(make), parameters={"n": N}, executor=shell)
    used = Step("use", PythonOPTemplate(use), executor=shell, parameters={
        "blob": made.outputs.parameters["blob"], "table_text": made.outputs.parameters["table"],
        "numbers": made.outputs.parameters["numbers"], "pairs": made.outputs.parameters["pairs"]})
    wf.add(made)
    wf.add(used)
    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"
    assert wf.query_step(name="use")[0].outputs.parameters["summary"].value == \
        f"{N} {N // 10} {N // 5} {N // 5 - 1} {N // 5} {N // 5 - 1}"
    blob_sha = hashlib.sha256(b"b" * N).hexdigest()
    assert (blob_sha, N) in rows(hpc_home, "SELECT sha256, bytes FROM parameter_values")
    assert rows(hpc_home, "SELECT max(length(outputs)) FROM steps")[0][0] < 4096
