"""Shapes of the author's API through the engine that the examples do not show: artifacts
as dicts, nested dicts and lists of paths, a BigParameter, a Parameter's default applied,
and a DAG used as a template with its own inputs and its outputs (value_from_parameter,
_from)."""

from pathlib import Path
from typing import Dict, List

from hpcflow import (
    DAG,
    InputParameter,
    OutputArtifact,
    OutputParameter,
    Step,
    Task,
    Workflow,
    download_artifact,
)
from hpcflow.python import (
    OP,
    Artifact,
    BigParameter,
    NestedDict,
    OPIOSign,
    Parameter,
    PythonOPTemplate,
)


@OP.function
def make(n: int) -> {"by_name": Artifact(Dict[str, Path]), "nested": Artifact(NestedDict[Path]),
                     "many": Artifact(List[Path]), "big": BigParameter(dict)}:
    files = {}
    for key in ("a", "b"):
        Path(f"{key}.txt").write_text(key * n)
        files[key] = Path(f"{key}.txt")
    Path("deep/er").mkdir(parents=True)
    Path("deep/er/x.txt").write_text("x")
    return {"by_name": files, "nested": {"top": {"inner": Path("deep/er/x.txt")}},
            "many": [files["b"], files["a"]], "big": {"values": list(range(1000))}}


@OP.function
def read(by_name: Artifact(Dict[str, Path]), nested: Artifact(NestedDict[Path]),
         many: Artifact(List[Path]), big: BigParameter(dict)) -> {"text": str}:
    return {"text": "|".join([by_name["a"].read_text(), by_name["b"].read_text(),
                              nested["top"]["inner"].read_text(),
                              ",".join(p.read_text() for p in many),
                              str(sum(big["values"]))])}


class Scale(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"x": int, "factor": Parameter(int, default=2)})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"y": int})

    @OP.exec_sign_check
    def execute(self, op_in):
        return {"y": op_in["x"] * op_in["factor"]}


def test_dict_nested_and_list_artifacts_and_a_big_parameter(hpc_home) -> None:
    wf = Workflow("artifact-shapes")
    made = Step("make", PythonOPTemplate(make), parameters={"n": 3})
    wf.add(made)
    wf.add(Step("read", PythonOPTemplate(read),
                artifacts={k: made.outputs.artifacts[k] for k in ("by_name", "nested", "many")},
                parameters={"big": made.outputs.parameters["big"]}))
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="read")[0].outputs.parameters["text"].value == \
        "aaa|bbb|x|bbb,aaa|499500"


def test_a_parameter_default_is_applied(hpc_home) -> None:
    wf = Workflow("parameter-default")
    wf.add([Step("default", PythonOPTemplate(Scale), parameters={"x": 5}),
            Step("given", PythonOPTemplate(Scale), parameters={"x": 5, "factor": 3})])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="default")[0].outputs.parameters["y"].value == 10
    assert wf.query_step(name="given")[0].outputs.parameters["y"].value == 15


def test_a_dag_template_with_inputs_and_outputs(hpc_home, tmp_path) -> None:
    inner = DAG(name="inner")
    inner.inputs.parameters = {"start": InputParameter(), "n": InputParameter()}
    scaled = Task("scaled", PythonOPTemplate(Scale),
                  parameters={"x": inner.inputs.parameters["start"]})
    made = Task("made", PythonOPTemplate(make), parameters={"n": inner.inputs.parameters["n"]})
    again = Task("again", PythonOPTemplate(Scale),
                 parameters={"x": scaled.outputs.parameters["y"], "factor": 10})
    inner.add([scaled, made, again])
    inner.outputs.parameters = {
        "result": OutputParameter(value_from_parameter=again.outputs.parameters["y"])}
    inner.outputs.artifacts = {"files": OutputArtifact(_from=made.outputs.artifacts["many"])}
    wf = Workflow("dag-io")
    outer = Step("outer", inner, parameters={"start": 7, "n": 2})
    wf.add(outer)
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    step = wf.query_step(name="outer")[0]
    assert step.outputs.parameters["result"].value == 140  # 7 * 2 * 10
    got = download_artifact(step.outputs.artifacts["files"], path=tmp_path / "got")
    assert sorted(Path(p).read_text() for p in got) == ["aa", "bb"]
