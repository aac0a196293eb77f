"""``hpcflow graph WF`` through the real CLI on a workflow the local engine ran: a DAG's
edges are its dependencies, a loop of 200 items is folded (its failed item kept, the others
counted), slices are a group, a nested Steps is a box inside the workflow's; the DOT is read
by the real Graphviz, ``-o png`` writes a PNG, and a mistake is one line."""

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import run_cli, run_on_terminal

SCRIPT = '''
from hpcflow import DAG, Step, Steps, Task, Workflow, argo_range
from hpcflow.python import OP, PythonOPTemplate, Slices

@OP.function
def check(x: int) -> {"y": int}:
    if x == 150:
        raise ValueError("one hundred and fifty")
    return {"y": x}

@OP.function
def double(x: int) -> {"y": int}:
    return {"y": 2 * x}

leaf = PythonOPTemplate(check)
diamond = DAG(name="diamond")
a = Task("a", leaf, parameters={"x": 1})
b = Task("b", leaf, parameters={"x": a.outputs.parameters["y"]})
c = Task("c", leaf, parameters={"x": a.outputs.parameters["y"]})
d = Task("d", leaf, parameters={"x": 2}, dependencies=[b, c])
diamond.add([a, b, c, d])
inner = Steps(name="inner")
inner.add(Step("one", leaf, parameters={"x": 3}))
inner.add(Step("two", leaf, parameters={"x": 4}))
sliced = PythonOPTemplate(double, slices=Slices(input_parameter=["x"], output_parameter=["y"]))

wf = Workflow("shapes")
wf.add(Step("prep", leaf, parameters={"x": 0}))
wf.add([Step("diamond", diamond),
        Step("fan", leaf, parameters={"x": "{{item}}"}, with_param=argo_range(200),
             continue_on_failed=True),
        Step("sliced", sliced, parameters={"x": list(range(5))}, with_param=argo_range(5)),
        Step("nested", inner)])
wf.add(Step("last", leaf, parameters={"x": 5}))
wf.submit()
print(wf.id)
wf.wait()
'''
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory):
    """The finished workflow, its home, and its steps by name (``hpcflow steps --json``)."""
    tmp = tmp_path_factory.mktemp("graph")
    home = tmp / "home"
    (tmp / "wf.py").write_text(SCRIPT)
    done = run_cli(["run", "wf.py"], home, tmp, timeout=600)
    assert done.stdout.strip(), done.stderr
    wf_id = done.stdout.split()[0]
    steps = json.loads(run_cli(["steps", wf_id, "--json"], home, tmp).stdout)
    by_name: dict[str, dict] = {}
    for step in steps:
        by_name.setdefault(step["name"], step)
    yield home, tmp, wf_id, by_name
    run_cli(["daemon", "stop"], home, tmp)


def _graph(ran, *args: str) -> subprocess.CompletedProcess:
    home, cwd, wf_id, _ = ran
    return run_cli(["graph", wf_id, *args], home, cwd)


def test_the_workflow_ran_as_the_tests_expect(ran):
    _, _, _, steps = ran
    assert steps["fan(150:150)"]["phase"] == "Failed"
    assert steps["last"]["phase"] == "Succeeded"  # the fan's failure was tolerated


def test_json_has_the_dag_edges_the_folded_loop_the_slices_and_the_nesting(ran):
    _, _, _, steps = ran
    done = _graph(ran, "-o", "json", "--fold", "5")
    assert done.returncode == 0, done.stderr
    graph = json.loads(done.stdout)
    nodes = {n["id"]: n for n in graph["nodes"]}
    nid = {name: f"s{s['id']}" for name, s in steps.items()}
    # the DAG: its dependencies, nothing else
    inside = {nid[t] for t in "abcd"}
    assert {tuple(e) for e in graph["edges"] if e[0] in inside} == \
        {(nid["a"], nid["b"]), (nid["a"], nid["c"]), (nid["b"], nid["d"]),
         (nid["c"], nid["d"])}
    assert nodes[nid["diamond"]]["group"] == "DAG"
    assert all(nodes[nid[t]]["parent"] == nid["diamond"] for t in "abcd")
    # the Steps: prep -> each parallel step -> last
    middle = [nid[n] for n in ("diamond", "fan", "sliced", "nested")]
    top = {tuple(e) for e in graph["edges"] if nodes[e[0]]["parent"] == graph["roots"][0]}
    assert top == {(nid["prep"], m) for m in middle} | {(m, nid["last"]) for m in middle}
    # the loop of 200: 5 first, the failed one, 193 counted, the last
    fan = nodes[nid["fan"]]
    assert fan["group"] == "loop" and fan["counts"] == {"Succeeded": 199, "Failed": 1}
    shown = [nodes[c]["name"] for c in fan["children"]]
    assert shown == [f"fan({i}:{i})" for i in range(5)] + \
        ["fan(150:150)", "193 more", "fan(199:199)"]
    more = nodes[fan["children"][-2]]
    assert more["kind"] == "more" and more["counts"] == {"Succeeded": 193}
    failed = nodes[nid["fan(150:150)"]]
    assert failed["phase"] == "Failed" and "one hundred and fifty" in failed["reason"]
    # slices, and the nested Steps as a box in the workflow's box
    assert nodes[nid["sliced"]]["group"] == "slices"
    assert len(nodes[nid["sliced"]]["children"]) == 5
    nested = nodes[nid["nested"]]
    assert nested["group"] == "Steps" and nested["parent"] == graph["roots"][0]
    assert [nodes[c]["name"] for c in nested["children"]] == ["one", "two"]
    assert [nid["one"], nid["two"]] in graph["edges"]


def test_svg_by_default_with_a_box_per_group_and_30_items_of_the_loop(ran):
    _, _, _, steps = ran
    done = _graph(ran)
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(done.stdout)
    step_ids = {g.get("data-step-id") for g in root.iter(SVG + "g") if g.get("data-step-id")}
    fan_items = {str(s["id"]) for n, s in steps.items() if n.startswith("fan(")}
    assert len(step_ids & fan_items) == 32  # the first 30, the failed one, the last
    assert str(steps["fan(150:150)"]["id"]) in step_ids
    groups = {g.get("data-group-id") for g in root.iter(SVG + "g") if g.get("data-group-id")}
    top = min(s["id"] for s in steps.values())  # the workflow's own Steps
    assert groups == {str(top)} | {str(steps[n]["id"]) for n in ("diamond", "fan", "sliced",
                                                                "nested")}
    failed = next(g for g in root.iter(SVG + "g")
                  if g.get("data-step-id") == str(steps["fan(150:150)"]["id"]))
    assert failed.get("class") == "node phase-Failed"
    assert "168 more" in "".join(t.text or "" for t in root.iter(SVG + "text"))


def test_dot_is_read_by_graphviz_and_mermaid_and_files_by_suffix(ran):
    _, cwd, _, steps = ran
    dot = _graph(ran, "-o", "dot")
    assert dot.returncode == 0, dot.stderr
    assert f'"s{steps["a"]["id"]}" -> "s{steps["b"]["id"]}"' in dot.stdout
    if shutil.which("dot") is not None:
        plain = subprocess.run(["dot", "-Tplain"], input=dot.stdout, capture_output=True,
                               text=True, timeout=120, check=False)
        assert plain.returncode == 0, plain.stderr
        assert re.search(rf"^edge s{steps['a']['id']} s{steps['c']['id']} ", plain.stdout,
                         re.M)
    mermaid = _graph(ran, "-o", "mermaid")
    assert mermaid.stdout.startswith("flowchart TD\n")
    assert f"s{steps['one']['id']} --> s{steps['two']['id']}" in mermaid.stdout
    out = cwd / "g.mmd"
    written = _graph(ran, "--output", str(out))
    assert written.returncode == 0 and written.stdout == ""
    assert out.read_text() == mermaid.stdout


def test_png_to_a_file_or_a_pipe_never_to_a_terminal(ran):
    home, cwd, wf_id, _ = ran
    if shutil.which("dot") is None:
        missing = _graph(ran, "-o", "png", "--output", str(cwd / "x.png"))
        assert missing.returncode == 1 and "install graphviz" in missing.stderr
        pytest.skip("Graphviz's dot is not installed (tests/run.sh installs it)")
    png = cwd / "graph.png"
    done = _graph(ran, "--output", str(png))  # the suffix says png
    assert done.returncode == 0, done.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    piped = subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "graph", wf_id, "-o",
                            "png"], cwd=cwd, env=dict(os.environ, HPCFLOW_HOME=str(home)),
                           capture_output=True, timeout=120, check=False)
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")
    assert run_on_terminal(["graph", wf_id, "-o", "png"], home, cwd) == (
        1, "", "hpcflow: -o png writes binary: give --output FILE.png (or redirect stdout to "
               "a file)")


def test_an_unknown_workflow_is_the_usual_one_line(ran):
    home, cwd, _, _ = ran
    done = run_cli(["graph", "no-such-wf"], home, cwd)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == run_cli(["get", "no-such-wf"], home, cwd).stderr.strip()


LIVE = '''
import sys
import time
from pathlib import Path
from hpcflow import DAG, Task, Workflow
from hpcflow.python import OP, PythonOPTemplate

@OP.function
def hold(gate: str) -> {"y": int}:
    while not Path(gate).exists():
        time.sleep(0.1)
    return {"y": 1}

dag = DAG(name="live")
a = Task("first", PythonOPTemplate(hold), parameters={"gate": sys.argv[1] + "/a"})
b = Task("second", PythonOPTemplate(hold), parameters={"gate": sys.argv[1] + "/b"},
         dependencies=[a])
dag.add([a, b])
wf = Workflow("live", steps=dag)
wf.submit()
'''


def test_the_graph_of_a_running_workflow_follows_its_phases(tmp_path):
    """Phases as they change, and a task the engine has not created yet drawn as planned
    until it is."""
    from tests.conftest import wait_until

    home = tmp_path / "home"
    (tmp_path / "wf.py").write_text(LIVE)
    done = run_cli(["submit", "-q", "wf.py", str(tmp_path)], home, tmp_path)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.split()[0]
    try:
        def graph_when(want: dict[str, str]) -> dict | None:
            out = run_cli(["graph", wf_id, "-o", "json"], home, tmp_path)
            assert out.returncode == 0, out.stderr
            graph = json.loads(out.stdout)
            phases = {n["name"]: n["phase"] for n in graph["nodes"]}
            return graph if all(phases.get(k) == v for k, v in want.items()) else None

        graph = wait_until(lambda: graph_when({"first": "Running"}), "first running")
        # the engine has not created "second" yet: it is drawn as planned, joined to first
        second = next(n for n in graph["nodes"] if n["name"] == "second")
        assert (second["kind"], second["note"], second["phase"]) == \
            ("planned", "not started", "")
        first = next(n for n in graph["nodes"] if n["name"] == "first")
        assert graph["edges"] == [[first["id"], second["id"]]]
        (tmp_path / "a").touch()
        graph = wait_until(lambda: graph_when({"first": "Succeeded", "second": "Running"}),
                           "second running")
        ids = {n["name"]: n["id"] for n in graph["nodes"]}
        assert graph["edges"] == [[ids["first"], ids["second"]]]
        root = next(n for n in graph["nodes"] if n["id"] == graph["roots"][0])
        assert root["phase"] == "Running" and root["counts"] == {"Succeeded": 1, "Running": 1}
        svg = run_cli(["graph", wf_id], home, tmp_path).stdout
        assert f'class="node phase-Running" data-step-id="{ids["second"][1:]}"' in svg
        (tmp_path / "b").touch()
        wait_until(lambda: graph_when({"second": "Succeeded"}), "second succeeded")
    finally:
        (tmp_path / "a").touch()
        (tmp_path / "b").touch()
        run_cli(["daemon", "stop"], home, tmp_path)
