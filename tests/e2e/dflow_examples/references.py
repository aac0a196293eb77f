"""dflow's references and expressions: p["key"], references nested in dict values,
arithmetic on references, == in if_expression and when=."""

from dflow import (
    InputParameter,
    OutputParameter,
    Step,
    Steps,
    Workflow,
    if_expression,
)
from dflow.io import ArgoVar, IfExpression
from dflow.python import OP, OPIO, OPIOSign, PythonOPTemplate


class Echo(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"x": dict})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"y": dict})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"y": op_in["x"]})


@OP.function
def count(n: int) -> {"n": int}:
    return {"n": n}


@OP.function
def make() -> {"conf": dict, "ok": bool}:
    return {"conf": {"type": "mixed", "n": 3}, "ok": True}


inner = Steps(name="inner")
inner.inputs.parameters["conf"] = InputParameter()
inner.inputs.parameters["ok"] = InputParameter()
inner.outputs.parameters["n"] = OutputParameter()
conf, ok = inner.inputs.parameters["conf"], inner.inputs.parameters["ok"]
assert isinstance(conf, ArgoVar)
nested = Step("nested", PythonOPTemplate(Echo),
              parameters={"x": {"mixed_type": conf["type"], "next": conf["n"] + 1}})
more = Step("more", PythonOPTemplate(count), parameters={"n": conf["n"] * 2})
less = Step("less", PythonOPTemplate(count), parameters={"n": conf["n"] - 1})
inner.add([nested, more, less])
inner.add(Step("only-if-ok", PythonOPTemplate(count), parameters={"n": 0}, when=ok == True))  # noqa: E712
chosen = if_expression(_if=(ok == True), _then=more.outputs.parameters["n"],  # noqa: E712
                       _else=less.outputs.parameters["n"])
assert isinstance(chosen, IfExpression)
inner.outputs.parameters["n"].value_from_expression = chosen

wf = Workflow(name="references")
made = Step("make", PythonOPTemplate(make))
wf.add(made)
wf.add(Step("use", inner, parameters={"conf": made.outputs.parameters["conf"],
                                      "ok": made.outputs.parameters["ok"]}))
wf.submit()
assert wf.wait() == "Succeeded", wf.query_status()

assert wf.query_step(name="nested")[0].outputs.parameters["y"].value == {
    "mixed_type": "mixed", "next": 4}
assert wf.query_step(name="use")[0].outputs.parameters["n"].value == 6
assert wf.query_step(name="only-if-ok")[0].phase == "Succeeded"
print("EXAMPLE OK")
