"""dflow's references and expressions through the engine: ``param["key"]`` (dflow's
``ArgoVar.__getitem__``), references nested in dict and list values, arithmetic on
references, ``==``/``!=`` in ``if_expression`` and ``when=``, and the combinations hpcflow
cannot evaluate refused at submission in one line (never a silent constant)."""

from typing import Any

import pytest

from hpcflow import (
    DAG,
    InputParameter,
    OutputParameter,
    Step,
    Steps,
    Task,
    Workflow,
    argo_range,
    if_expression,
)
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python import OP, PythonOPTemplate
from tests.conftest import run_cli


@OP.function
def echo(x: Any) -> {"y": Any}:
    return {"y": x}


@OP.function
def number(x: float) -> {"y": float}:
    return {"y": x}


@OP.function
def text(x: str) -> {"y": str}:
    return {"y": x}


@OP.function
def make_conf() -> {"conf": dict}:
    return {"conf": {"type": "mixed", "n": 3, "sizes": [10, 20, 30], "flag": True}}


def _outputs(wf: Workflow, *names: str) -> dict:
    return {n: wf.query_step(name=n)[0].outputs.parameters["y"].value for n in names}


def test_subscripts_and_references_nested_in_dicts_and_lists(hpc_home) -> None:
    """dflow users write ``p["type"]`` and ``{"mixed_type": p["type"]}``: each reaches the
    OP as the value it names (hpcflow pickled the reference objects before)."""
    inner = Steps(name="inner")
    inner.inputs.parameters["conf"] = InputParameter()
    conf = inner.inputs.parameters["conf"]
    inner.outputs.parameters["first"] = OutputParameter(value_from_parameter=conf["sizes"][0])
    inner.inputs.parameters["raw"] = InputParameter(value='{"a": [5, 6]}')
    raw = inner.inputs.parameters["raw"]
    inner.add([
        Step("kind", PythonOPTemplate(echo), parameters={"x": conf["type"]}),
        Step("nested", PythonOPTemplate(echo),
             parameters={"x": {"mixed_type": conf["type"], "n": [conf["n"], 1],
                               "tag": "n={{item}}"}},
             with_param=conf["sizes"]),
        Step("size", PythonOPTemplate(echo), parameters={"x": conf["sizes"][-1]}),
        Step("text", PythonOPTemplate(echo), parameters={"x": f"n-{conf['n']}"}),
        Step("json-text", PythonOPTemplate(echo), parameters={"x": raw["a"][1]}),
        Step("ranged", PythonOPTemplate(echo), parameters={"x": "{{item}}"},
             with_param=argo_range(conf["n"] + 1)),
    ])
    made = Step("made", PythonOPTemplate(make_conf))
    produced = made.outputs.parameters["conf"]
    wf = Workflow("subscripts")
    wf.add(made)
    wf.add([
        Step("run", inner, parameters={"conf": {"type": "given", "n": 2, "sizes": [1, 2]}}),
        Step("from-output", PythonOPTemplate(echo),
             parameters={"x": [produced["sizes"][1], {"flag": produced["flag"]}]}),
        Step("missing", PythonOPTemplate(echo), parameters={"x": produced["nope"]}),
    ])
    wf.submit()
    assert wf.wait(timeout=120) == "Failed"
    assert _outputs(wf, "kind", "size", "text", "from-output", "json-text") == {
        "kind": "given", "size": 2, "text": "n-2", "from-output": [20, {"flag": True}],
        "json-text": 6}
    assert sorted(s.outputs.parameters["y"].value for s in wf.query_step(name="ranged")
                  if s.type == "Pod") == [0, 1, 2]
    assert wf.query_step(name="run")[0].outputs.parameters["first"].value == 1
    nested = sorted((s.outputs.parameters["y"].value for s in wf.query_step(name="nested")
                     if s.type == "Pod"), key=lambda v: v["tag"])
    assert nested == [{"mixed_type": "given", "n": [2, 1], "tag": f"n={i}"} for i in (1, 2)]
    [missing] = wf.query_step(name="missing")
    assert missing.phase == "Error"
    assert "{{steps.made.outputs.parameters.conf['nope']}}" in missing.reason
    assert "has no key 'nope'" in missing.reason and "\n" not in missing.reason


def test_arithmetic_on_references(hpc_home) -> None:
    """``p + 1``, ``-``, ``*``, ``/`` (dflow's ``asFloat(...) + 1``) computed at run time; a
    whole number reads as an int, as Argo renders it; ``p + "text"`` is text, as in dflow; a
    ``str`` input gets a computed value as text, and text holds ``true``/``null`` as dflow's
    parameters do."""
    dag = DAG(name="calc")
    dag.inputs.parameters["p"] = InputParameter()
    dag.outputs.parameters["total"] = OutputParameter()
    dag.inputs.parameters["flag"] = InputParameter(value=True)
    dag.inputs.parameters["none"] = InputParameter(value=None)
    p, flag, none = (dag.inputs.parameters[n] for n in ("p", "flag", "none"))
    first = Task("first", PythonOPTemplate(number), parameters={"x": p * 2})
    y = first.outputs.parameters["y"]
    dag.add([
        first,
        Task("plus", PythonOPTemplate(echo), parameters={"x": p + 1}),
        Task("minus", PythonOPTemplate(echo), parameters={"x": p - 5}),
        Task("half", PythonOPTemplate(echo), parameters={"x": p / 2}),
        Task("chained", PythonOPTemplate(echo), parameters={"x": (y + 1) * (p - 1)}),
        Task("nested", PythonOPTemplate(echo), parameters={"x": {"next": y / 3}}),
        Task("concat", PythonOPTemplate(echo), parameters={"x": p + "-suffix"}),
        Task("compare", PythonOPTemplate(echo), parameters={"x": y > p}),
        Task("as-text", PythonOPTemplate(text), parameters={"x": p + 1}),
        Task("bool-text", PythonOPTemplate(text), parameters={"x": y > p}),
        Task("in-text", PythonOPTemplate(text), parameters={"x": f"flag-{flag}-{none}"}),
    ])
    dag.outputs.parameters["total"].value_from_expression = y * 10
    wf = Workflow("arith")
    wf.add(Step("run", dag, parameters={"p": 3}))
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    got = _outputs(wf, "first", "plus", "minus", "half", "chained", "nested", "concat",
                   "compare", "as-text", "bool-text", "in-text")
    assert got == {"first": 6, "plus": 4, "minus": -2, "half": 1.5, "chained": 14,
                   "nested": {"next": 2}, "concat": "3-suffix", "compare": True,
                   "as-text": "4", "bool-text": "true", "in-text": "flag-true-null"}
    assert wf.query_step(name="run")[0].outputs.parameters["total"].value == 60


def flagged() -> Steps:
    """dflow's pattern: a Steps whose output comes from one branch, chosen by a flag."""
    choose = Steps(name="choose")
    choose.inputs.parameters["flag"] = InputParameter()
    choose.inputs.parameters["n"] = InputParameter()
    choose.outputs.parameters["eq"] = OutputParameter()
    choose.outputs.parameters["bare"] = OutputParameter()
    choose.outputs.parameters["ne"] = OutputParameter()
    choose.outputs.parameters["packed"] = OutputParameter()
    flag, n = choose.inputs.parameters["flag"], choose.inputs.parameters["n"]
    yes = Step("yes", PythonOPTemplate(echo), parameters={"x": "yes"})
    no = Step("no", PythonOPTemplate(echo), parameters={"x": "no"})
    choose.add([yes, no])
    choose.add([
        Step("if-true", PythonOPTemplate(echo), parameters={"x": 1}, when=flag == True),  # noqa: E712
        Step("if-three", PythonOPTemplate(echo), parameters={"x": 1}, when=n == 3),
        Step("unless-three", PythonOPTemplate(echo), parameters={"x": 1}, when=n != 3),
        Step("if-flag", PythonOPTemplate(echo), parameters={"x": 1}, when=flag),
    ])
    y_yes, y_no = yes.outputs.parameters["y"], no.outputs.parameters["y"]
    choose.outputs.parameters["eq"].value_from_expression = if_expression(
        _if=(flag == True), _then=y_yes, _else=y_no)  # noqa: E712
    choose.outputs.parameters["bare"].value_from_expression = if_expression(
        _if=flag, _then=y_yes, _else=y_no)
    choose.outputs.parameters["ne"].value_from_expression = if_expression(
        _if=(y_yes != y_no), _then=n + 1, _else=n)
    choose.outputs.parameters["packed"].value_from_expression = if_expression(
        _if=n < 4, _then={"n": n, "next": [n + 1]}, _else=[y_no])
    return choose


def test_equality_of_references_in_if_expression_and_when(hpc_home) -> None:
    """``if_expression(_if=(ref == True), ...)`` took the else branch whatever ``ref`` was
    (``ref == True`` was Python's ``False``); now it is a condition, as in dflow."""
    wf = Workflow("equality")
    wf.add([Step("on", flagged(), parameters={"flag": True, "n": 3}),
            Step("off", flagged(), parameters={"flag": False, "n": 4}),
            Step("text", flagged(), parameters={"flag": "true", "n": "3"})])
    wf.submit()
    assert wf.wait(timeout=120) == "Succeeded"
    outputs = {name: {k: v.value for k, v in wf.query_step(name=name)[0].outputs.parameters.items()}
               for name in ("on", "off", "text")}
    assert outputs == {"on": {"eq": "yes", "bare": "yes", "ne": 4, "packed": {"n": 3, "next": [4]}},
                       "off": {"eq": "no", "bare": "no", "ne": 5, "packed": ["no"]},
                       "text": {"eq": "yes", "bare": "yes", "ne": 4,
                                "packed": {"n": "3", "next": [4]}}}
    phases = sorted((s.name, s.phase) for s in wf.query_step(
        name=["if-true", "if-three", "unless-three", "if-flag"]))
    assert phases == sorted([("if-true", "Succeeded"), ("if-true", "Skipped"),
                             ("if-true", "Succeeded"), ("if-three", "Succeeded"),
                             ("if-three", "Skipped"), ("if-three", "Succeeded"),
                             ("unless-three", "Skipped"), ("unless-three", "Succeeded"),
                             ("unless-three", "Skipped"), ("if-flag", "Succeeded"),
                             ("if-flag", "Skipped"), ("if-flag", "Succeeded")])


def test_what_cannot_be_evaluated_is_refused_in_one_line(hpc_home) -> None:
    p = InputParameter(name="p")
    cases = [
        (lambda: p == [1, 2], r"p\}\} == \[1, 2\]: hpcflow cannot evaluate this at run time"),
        (lambda: p * "x", r"p\}\} \* 'x': .* use a number or another parameter"),
        (lambda: p + None, r"p\}\} \+ None: .* use a number or another parameter"),
        (lambda: p[1.5], r"p\}\}\[1.5\]: a parameter reference takes a str key or an int"),
        (lambda: (p + 1)["k"], r"a computed value cannot be subscripted"),
        (lambda: if_expression(_if=False, _then=1, _else=2),
         r"if_expression\(_if=False\): the condition is a constant bool"),
    ]
    for build, message in cases:
        with pytest.raises(WorkflowDefinitionError, match=message):
            build()
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(p)
    assert repr(p) == str(p) == f"{p}" == "{{inputs.parameters.p}}"
    for build in (lambda: p % 2, lambda: p // 2, lambda: p ** 2, lambda: -p, lambda: 1 + p):
        with pytest.raises(TypeError):  # dflow's ArgoVar has none of them either
            build()
    assert {p: 1}[p] == 1 and p in {p}

    odd = Steps(name="odd")
    odd.outputs.parameters["o"] = OutputParameter()
    inner = Step("inner", PythonOPTemplate(echo), parameters={"x": 1})
    odd.add(inner)
    odd.outputs.parameters["o"].value_from_expression = if_expression(
        _if="1 < < 2", _then=inner.outputs.parameters["y"], _else=2)
    wf = Workflow("odd-if")
    wf.add(Step("use", odd))
    with pytest.raises(WorkflowDefinitionError, match=(
            r"output 'o' of 'odd': if_expression\(_if=...\): cannot parse the expression "
            r"'1 < < 2': unexpected")):
        wf.submit()

    class Holder:
        def __init__(self, value: Any) -> None:
            self.value = value

    made = Step("made", PythonOPTemplate(make_conf))
    for parameters, when, message in [
        ({"x": Holder(made.outputs.parameters["conf"])}, None,
         r"step 'use' parameter 'x': a reference inside a Holder cannot be resolved"),
        ({"x": {1: made.outputs.parameters["conf"]}}, None,
         r"a dict holding references needs str keys, not 1"),
        ({"x": 1}, False,
         r"step 'use': when=False is a constant bool"),
        ({"x": made.outputs.parameters["nada"]["k"]}, None,
         r"uses \{\{steps.made.outputs.parameters.nada\}\}, but step 'made' .* has no output "
         r"parameter 'nada' \(it has: conf\)"),
    ]:
        wf = Workflow("refused")
        wf.add(made)
        wf.add(Step("use", PythonOPTemplate(echo), parameters=parameters, when=when))
        with pytest.raises(WorkflowDefinitionError, match=message):
            wf.submit()
        assert wf.id is None


def test_a_refused_expression_is_one_line_on_the_cli(hpc_home, tmp_path) -> None:
    script = tmp_path / "wf.py"
    script.write_text(
        "from hpcflow import Step, Workflow\n"
        "from hpcflow.python import OP, PythonOPTemplate\n"
        "@OP.function\n"
        "def echo(x: int) -> {'y': int}:\n"
        "    return {'y': x}\n"
        "first = Step('first', PythonOPTemplate(echo), parameters={'x': 1})\n"
        "second = Step('second', PythonOPTemplate(echo),\n"
        "              parameters={'x': first.outputs.parameters['y'] == {'a': 1}})\n"
        "wf = Workflow('cli-refused')\n"
        "wf.add([first, second])\n"
        "wf.submit()\n")
    result = run_cli(["run", str(script)], hpc_home, tmp_path)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line == (
        f"hpcflow: {script} (line 8): {{{{steps.first.outputs.parameters.y}}}} == {{'a': 1}}: "
        "hpcflow cannot evaluate this at run time: use a number, a string, a bool, None or "
        "another parameter (not dict)")
    assert not (hpc_home / "store.db").exists() or "cli-refused" not in run_cli(
        ["list"], hpc_home, tmp_path).stdout


def test_value_of_step_inputs_and_of_parameters_without_one() -> None:
    """dflow code reads ``step.inputs.parameters["x"].value`` (what the step was given) and
    asks ``hasattr(param, "value")`` of a parameter without a default."""

    @OP.function
    def two(x: int, y: int = 5) -> {"z": int}:
        return {"z": x + y}

    step = Step("s", PythonOPTemplate(two), parameters={"x": {"a": 1}})
    assert step.inputs.parameters["x"].value == {"a": 1}
    assert step.inputs.parameters["y"].value == 5
    assert not hasattr(InputParameter(), "value") and InputParameter(value=None).value is None
    assert not hasattr(OutputParameter(), "default") and not hasattr(OutputParameter(), "value")
    assert OutputParameter(default=None).default is None
    with pytest.raises(AttributeError, match=r"read it from wf\.query_step"):
        step.outputs.parameters["z"].value  # noqa: B018


def test_dflow_names_of_reference_types() -> None:
    """dflow code imports ``ArgoVar`` and ``IfExpression`` from ``dflow.io`` (and
    ``IfExpression`` from ``dflow``) for ``isinstance`` checks and type hints."""
    from hpcflow import IfExpression
    from hpcflow.io import ArgoVar
    from hpcflow.io import IfExpression as io_if_expression_type
    from hpcflow.io import if_expression as io_if_expression

    p = InputParameter(name="p")
    chosen = io_if_expression(_if=p < 1, _then=p, _else=p + 1)
    assert IfExpression is io_if_expression_type and isinstance(chosen, IfExpression)
    assert all(isinstance(v, ArgoVar) for v in (p, p["k"], p + 1, p == 1))
