"""dflow's graphs: ``OP.get_info``/``get_opio_info``/``convert_to_graph``/``from_graph`` and
``Workflow.to_graph*``/``from_graph*``; a graph read back runs the same, through the engine."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpcflow import (
    DAG,
    InputParameter,
    OutputParameter,
    ShellOPTemplate,
    Step,
    Task,
    Workflow,
    argo_range,
    upload_artifact,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, OPIO, Artifact, OPIOSign, Parameter, PythonOPTemplate


class Multiply(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"x": int, "factor": Parameter(int, default=3)})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"y": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"y": op_in["x"] * op_in["factor"]})


@OP.function
def count_lines(text: Artifact(Path)) -> {"lines": int, "copy": Artifact(Path)}:
    Path("copy.txt").write_text(Path(text).read_text() * 2)
    return {"lines": len(Path("copy.txt").read_text().splitlines()), "copy": Path("copy.txt")}


def _workflow(data: Path) -> Workflow:
    """Class and function OPs, a shell script, a DAG, an upload, references, a loop, when=,
    keys and workflow parameters."""
    shell = ShellOPTemplate(name="greet", script="echo {{inputs.parameters.who}} > /tmp/o.txt")
    shell.inputs.parameters["who"] = InputParameter()
    shell.outputs.parameters["said"] = OutputParameter(value_from_path="/tmp/o.txt")
    dag = DAG(name="inner")
    dag.inputs.parameters["n"] = InputParameter(value=1)
    a = Task("a", PythonOPTemplate(Multiply), parameters={"x": dag.inputs.parameters["n"]})
    b = Task("b", PythonOPTemplate(Multiply), parameters={"x": a.outputs.parameters["y"],
                                                          "factor": 2})
    dag.add([a, b])
    dag.outputs.parameters["y"] = OutputParameter(value_from_parameter=b.outputs.parameters["y"])
    wf = Workflow("graph", parameters={"who": "graph"}, labels={"team": "md"})
    count = Step("count", PythonOPTemplate(count_lines), artifacts={"text": upload_artifact(data)},
                 key="count-lines")
    wf.add(count)
    lines = count.outputs.parameters["lines"]
    wf.add([Step("loop", PythonOPTemplate(Multiply), parameters={"x": lines},
                 with_param=argo_range(2), when=lines > 1),
            Step("greet", shell, parameters={"who": "{{workflow.parameters.who}}"}),
            Step("inner", dag, parameters={"n": lines}, key="inner")])
    return wf


def _outputs(wf: Workflow) -> dict:
    return {(s.name, s.key): ({n: p.value for n, p in s.outputs.parameters.items()},
                              sorted(s.outputs.artifacts)) for s in wf.query_step()
            if s.type in ("Pod", "DAG")}


def test_a_graph_read_back_runs_the_same(hpc_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "text.txt"
    data.write_text("one\ntwo\n")
    wf = _workflow(data)
    graph = wf.to_graph()
    assert json.loads(json.dumps(graph)) == graph  # plain data
    assert (graph["name"], graph["labels"], graph["parameters"]) == (
        "graph", {"team": "md"}, {"who": "graph"})
    templates = graph["templates"]
    assert {t["type"] for t in templates.values()} == {
        "Steps", "DAG", "PythonOPTemplate", "ScriptOPTemplate"}
    entry = templates[graph["entrypoint"]]
    count, (loop, greet, inner) = entry["steps"][0][0], entry["steps"][1]
    assert count["key"] == "count-lines" and templates[count["template"]]["op"]["name"] == \
        "count_lines"
    assert loop["when"] == "{{steps.count.outputs.parameters.lines}} > 1"
    assert loop["parameters"] == {"x": "{{steps.count.outputs.parameters.lines}}"}
    assert greet["parameters"] == {"who": "{{workflow.parameters.who}}"}
    assert [t["name"] for t in templates[inner["template"]]["tasks"]] == ["a", "b"]
    op = templates[loop["template"]]["op"]
    assert (op["module"], op["name"]) == (__name__, "Multiply")
    assert "class Multiply(OP):" in op["source"] and "import" in op["source"]

    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"
    assert _outputs(wf)[("inner", "inner")][0] == {"y": 24}  # 4 lines * 3 * 2
    assert Workflow(id=wf.id).to_graph()["templates"] == graph["templates"]
    again = [Workflow.from_graph(copy.deepcopy(graph)), Workflow.from_graph_json(
        wf.to_graph_json()), Workflow.from_graph_yaml(wf.to_graph_yaml())]
    assert again[0].parameters == {"who": "graph"} and again[0].labels == {"team": "md"}
    for rebuilt in again:
        rebuilt.submit()
        assert rebuilt.wait(timeout=180) == "Succeeded" and rebuilt.id != wf.id
        assert _outputs(rebuilt) == _outputs(wf)


def test_op_info_and_graph(hpc_home: Path) -> None:
    info = Multiply.get_info()
    assert info["name"] == f"{__name__}.Multiply"
    assert info["inputs"]["x"] == "int" and info["outputs"] == {"y": "int"}
    assert "def execute" in info["execute"]
    assert "return {\"lines\"" in count_lines.get_info()["execute"]
    opio = Multiply.get_opio_info(Multiply.get_input_sign())
    assert opio["x"] == "int" and isinstance(opio["factor"], Parameter)
    graph = count_lines.convert_to_graph()
    assert (graph["module"], graph["name"]) == (__name__, "count_lines")
    assert OP.from_graph(graph) is count_lines and OP.from_graph(
        Multiply.convert_to_graph()) is Multiply


MAIN_SCRIPT = '''
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def shout(text: str) -> {"loud": str}:
    return {"loud": text.upper() + "!"}


if __name__ == "__main__":
    wf = Workflow("from-main")
    wf.add(Step("shout", PythonOPTemplate(shout), parameters={"text": "hi"}))
    Path("graph.json").write_text(wf.to_graph_json())
'''


def test_an_op_of_main_is_made_again_from_the_source_in_the_graph(hpc_home: Path,
                                                                   tmp_path: Path) -> None:
    """dflow's ``from_graph`` of an OP defined in a script runs the source the graph holds
    (a graph is code)."""
    script = tmp_path / "make_graph.py"
    script.write_text(MAIN_SCRIPT)
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, timeout=120)
    text = (tmp_path / "graph.json").read_text()
    [op] = [t["op"] for t in json.loads(text)["templates"].values() if "op" in t]
    assert op["module"] == "__main__" and "def shout" in op["source"]
    shout = OP.from_graph(op)
    assert shout.func("a") == {"loud": "A!"}
    assert shout.convert_to_graph() == op  # the graph it came from
    wf = Workflow.from_graph_json(text)
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="shout")[0].outputs.parameters["loud"].value == "HI!"


def test_a_malformed_or_edited_graph_is_refused_in_one_line(hpc_home: Path,
                                                            tmp_path: Path) -> None:
    data = tmp_path / "text.txt"
    data.write_text("one\n")
    graph = _workflow(data).to_graph()
    edited = copy.deepcopy(graph)
    entry = edited["templates"][edited["entrypoint"]]
    entry["steps"][0][0]["key"] = "other"
    broken_op = copy.deepcopy(graph)
    python = next(t for t in broken_op["templates"].values() if "op" in t)
    python["op"] = {"module": "__main__", "name": "gone", "source": "raise SystemError('x')"}
    for bad, match in ((["not", "a", "graph"], "not a workflow graph"),
                       ({"templates": {}}, "not a workflow graph"),
                       (edited, "template 'graph' differs"),
                       (broken_op, "the source of OP 'gone' fails")):
        with pytest.raises(WorkflowDefinitionError, match=match) as info:
            Workflow.from_graph(bad)
        assert "\n" not in str(info.value) and str(info.value).startswith(
            "Workflow.from_graph" if match != "the source of OP 'gone' fails" else "OP.")
    with pytest.raises(WorkflowDefinitionError, match="cannot be imported"):
        OP.from_graph({"module": "no_such_module_here", "name": "X"})
    with pytest.raises(WorkflowDefinitionError, match="not an OP's"):
        OP.from_graph(yaml.safe_load("[1, 2]"))
