"""dflow's ``@OP.superfunction``: a function calling ``@OP.function`` OPs is a DAG template,
called in a ``with Workflow(...)`` block as dflow users call function OPs."""

from pathlib import Path
from typing import Tuple

import pytest

from hpcflow import DAG, Step, Workflow
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, Artifact


@OP.function
def add(a: int, b: int) -> {"sum": int}:
    return {"sum": a + b}


@OP.function
def scale(x: int, factor: int = 10) -> int:
    return x * factor


@OP.function
def write(text: str) -> {"out": Artifact(Path)}:
    Path("out.txt").write_text(text)
    return {"out": Path("out.txt")}


@OP.function
def shout(f: Artifact(Path)) -> {"text": str}:
    return {"text": Path(f).read_text().upper()}


@OP.superfunction
def add_then_scale(a: int, b: int = 1) -> {"result": int}:
    total = add(a=a, b=b)
    return {"result": scale(total["sum"])}


@OP.superfunction
def twice(a: int, b: int) -> Tuple[int, int]:
    """A superfunction calling another, with positional arguments and ``use()``."""
    first = add_then_scale(a, b)["result"]
    second = add_then_scale.use(key="second-pass")(first, b=b)["result"]
    return first, second


@OP.superfunction
def write_and_shout(text: str) -> {"file": Artifact(Path), "text": str}:
    written = write(text=text)
    return {"file": written["out"], "text": shout(written["out"])["text"]}


def _outputs(wf: Workflow, name: str) -> dict:
    [step] = [s for s in wf.query_step(name=name) if s.type == "DAG"]
    assert step.phase == "Succeeded"
    return {n: p.value for n, p in step.outputs.parameters.items()}


def test_superfunction_is_a_dag_called_in_a_workflow_block(hpc_home: Path) -> None:
    assert isinstance(twice, DAG) and twice.name == "twice"
    assert list(add_then_scale.inputs.parameters) == ["a", "b"]
    assert add_then_scale.inputs.parameters["b"].value == 1
    with Workflow(name="superfunction") as wf:
        _, second = twice(1, 2)  # (1 + 2) * 10, then (30 + 2) * 10
        scale(second, factor=2)  # a function OP reading the superfunction's output
        file_and_text = write_and_shout("hello")
        write_and_shout.use(key="shouted")(text=file_and_text["text"])
    assert wf.wait(timeout=240) == "Succeeded"
    assert _outputs(wf, "twice-.*") == {"dflow_output_0": 30, "dflow_output_1": 320}
    root = wf.query_step(name=wf.id)[0]
    assert [s.outputs.parameters["dflow_output"].value for s in wf.query_step(name="scale-.*")
            if s.parent_id == root.id] == [640]
    assert wf.query_step(key="second-pass")[0].outputs.parameters["result"].value == 320
    [shouted] = wf.query_step(key="shouted")
    assert shouted.outputs.parameters["text"].value == "HELLO"
    [made] = [s for s in wf.query_step(name="write-and-shout-.*") if s.key is None]
    assert made.outputs.artifacts["file"] is not None


def test_superfunction_as_a_step_template(hpc_home: Path) -> None:
    wf = Workflow(name="superfunction-step")
    wf.add(Step("sum", add_then_scale, parameters={"a": 4}))
    wf.submit()
    assert wf.wait(timeout=240) == "Succeeded"
    assert wf.query_step(name="sum")[0].outputs.parameters["result"].value == 50


def test_superfunction_called_outside_a_block_is_refused_in_one_line() -> None:
    with pytest.raises(WorkflowDefinitionError, match="outside a 'with Workflow") as info:
        add_then_scale(1, 2)
    assert "\n" not in str(info.value)
    with pytest.raises(WorkflowDefinitionError, match="no value for its output 'y'"):
        @OP.superfunction
        def forgets(a: int) -> {"y": int}:
            add(a=a, b=a)
            return {}
