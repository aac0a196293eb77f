"""dflow's workflow objects as dflow scripts use them, in dflow's debug mode: submit() returns
when the workflow is over; query() and get_step(key=); steps read as dicts; global outputs;
a workflow and its step of the same name; an id reattached only fails when used."""

from dflow import Step, Steps, Workflow, config
from dflow.python import OP, OPIO, OPIOSign, Parameter, PythonOPTemplate

config["mode"] = "debug"


class Add(OP):
    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"a": int, "b": int})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"c": Parameter(int, global_name="last-sum")})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        return OPIO({"c": op_in["a"] + op_in["b"]})


inner = Steps(name="inner")
first = Step("first", PythonOPTemplate(Add), parameters={"a": 1, "b": 2}, key="first")
inner.add(first)
inner.add(Step("second", PythonOPTemplate(Add),
               parameters={"a": first.outputs.parameters["c"], "b": 10}, key="second"))
wf = Workflow(name="hello")
wf.add(Step("hello", PythonOPTemplate(Add), parameters={"a": 0, "b": 1}, key="hello"))
wf.add(Step("group", inner))
wf.submit()
assert wf.query_status() == "Succeeded"  # debug mode: submit() ran it to its end

assert [s.key for s in wf.query_step(name="hello")] == ["hello"]  # not the root
info = wf.query()
step = info.get_step(key="second")[0]
assert step["phase"] == "Succeeded" and step["outputs"]["parameters"]["c"]["value"] == 13
group = info.get_step(name="group")[0]
assert [s.key for s in info.get_step(parent_id=group.id)] == ["first", "second"]
assert [s.key for s in wf.query_step(type="Pod", sort_by_generation=True)] == [
    "hello", "first", "second"]
assert wf.query_global_outputs().parameters["last-sum"].value == 13

missing = Workflow(id="hello-zzzzz")  # built without asking
try:
    missing.query_status()
except Exception as exc:
    assert "hello-zzzzz" in str(exc)
else:
    raise AssertionError("an unknown id must fail when used")
print("EXAMPLE OK")
