"""dflow's module paths and the ``with`` syntax, in-process with the import renamed:
``hpcflow.config`` as a module and as the dict, ``hpcflow.plugins.dispatcher`` /
``.bohrium``, ``hpcflow.python.*``, ``hpcflow.step`` / ``hpcflow.workflow`` names, and what
joins a ``with Workflow(...)`` block."""

import subprocess
import sys

import pytest

from hpcflow import DAG, Step, Steps, Task, Workflow
from hpcflow.errors import HpcflowError
from hpcflow.python import OP, PythonOPTemplate


@OP.function
def plus_one(x: int) -> {"y": int}:
    return {"y": x + 1}


def test_config_is_a_module_and_the_package_name_is_the_dict() -> None:
    code = (
        "import hpcflow.config\n"                     # the module first, as dflow apps do
        "from hpcflow.config import config, s3_config, set_config, set_s3_config\n"
        "from hpcflow import config as c2\n"
        "import hpcflow\n"
        "assert type(config) is dict and c2 is config and hpcflow.config is config\n"
        "assert type(s3_config) is dict and hpcflow.s3_config is s3_config\n"
        "import sys; m = sys.modules['hpcflow.config']\n"
        "assert m.config is config and m.set_config is set_config\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout == "ok\n", done.stderr


def test_dflow_module_paths_exist_under_hpcflow() -> None:
    from hpcflow.connectors.dispatcher import DispatcherExecutor
    from hpcflow.plugins.dispatcher import DispatcherExecutor as Renamed
    from hpcflow.python.opio import OPIO, Artifact, HDF5Datasets, OPIOSign, Parameter
    from hpcflow.python.python_op_template import PythonOPTemplate as T
    from hpcflow.python.python_op_template import Slices, TransientError, upload_packages
    from hpcflow.step import argo_len, argo_range, argo_sequence, if_expression
    from hpcflow.workflow import query_archived_workflows, query_workflows

    assert Renamed is DispatcherExecutor and T is PythonOPTemplate
    assert all((OPIO, Artifact, HDF5Datasets, OPIOSign, Parameter, Slices, TransientError,
                argo_len, argo_range, argo_sequence, if_expression, query_workflows,
                query_archived_workflows)) and isinstance(upload_packages, list)


def test_bohrium_plugin_refuses_what_needs_bohriums_argo_in_one_line() -> None:
    from hpcflow.plugins import bohrium

    bohrium.config["username"] = "someone@example.org"  # accepted
    for make in (lambda: bohrium.BohriumExecutor(executor="bohrium_v2"),
                 lambda: bohrium.BohriumContext(username="u", password="p"),
                 lambda: bohrium.TiefblueClient(),
                 lambda: bohrium.login(username="u", password="p"),
                 lambda: bohrium.create_job_group("g")):
        with pytest.raises(HpcflowError) as caught:
            make()
        text = str(caught.value)
        assert "\n" not in text and "is not supported by hpcflow" in text
        assert "DispatcherExecutor(machine_dict={'batch_type': 'Bohrium'" in text


def test_steps_made_inside_a_with_block_join_it_and_leaving_submits(hpc_home) -> None:
    with Workflow(name="ctx") as wf:
        Step("first", PythonOPTemplate(plus_one), parameters={"x": 1})
        with Steps(name="inner") as inner:  # a template: its steps join it, not wf
            Step("in-inner", PythonOPTemplate(plus_one), parameters={"x": 2})
        Step("use-inner", inner)  # after the inner block, steps join wf again
        assert wf.id is None  # submitted on leaving, not before
    assert [s.name for g in wf.entry.steps for s in g] == ["first", "use-inner"]
    assert wf.id is not None and wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="in-inner")[0].outputs.parameters["y"].value == 3
    loose = Step("outside", PythonOPTemplate(plus_one), parameters={"x": 0})
    assert all(loose not in g for g in wf.entry.steps)


def test_a_block_that_raises_submits_nothing(hpc_home) -> None:
    from hpcflow import context_syntax

    with pytest.raises(RuntimeError), Workflow(name="broken") as wf:
        Step("a", PythonOPTemplate(plus_one), parameters={"x": 1})
        raise RuntimeError("oops")
    assert wf.id is None and not context_syntax.in_context()
    assert not (hpc_home / "store.db").exists()


def test_tasks_first_make_a_dag_entrypoint(hpc_home) -> None:
    with Workflow(name="dag-ctx") as wf:
        a = Task("a", PythonOPTemplate(plus_one), parameters={"x": 1})
        Task("b", PythonOPTemplate(plus_one), parameters={"x": a.outputs.parameters["y"]})
    assert isinstance(wf.entry, DAG) and [t.name for t in wf.entry.tasks] == ["a", "b"]
    assert wf.wait(timeout=120) == "Succeeded"
    assert wf.query_step(name="b")[0].outputs.parameters["y"].value == 3


def test_calling_a_function_op_outside_a_block() -> None:
    """As in dflow: with arguments it runs here; ``f()`` stays an instance for templates."""
    assert isinstance(plus_one(), OP) and PythonOPTemplate(plus_one()).name == "plus-one"
    assert dict(plus_one(4)) == {"y": 5} and dict(plus_one(x=1)) == {"y": 2}
    with pytest.raises(TypeError, match="multiple values"):
        plus_one(1, x=2)
    with pytest.raises(TypeError, match="takes 1 arguments"):
        plus_one(1, 2)


def test_calling_a_function_op_inside_a_block_adds_a_task(hpc_home) -> None:
    with Workflow(name="calls") as wf:
        first = plus_one(x=1)
        plus_one(first["y"])
    assert isinstance(wf.entry, DAG) and len(wf.entry.tasks) == 2
    assert wf.wait(timeout=120) == "Succeeded"
    assert sorted(s.outputs.parameters["y"].value for s in wf.query_step(type="Pod")) == [2, 3]
