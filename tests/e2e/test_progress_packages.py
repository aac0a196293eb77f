"""Progress reported by a running OP, and local packages made importable in steps."""

import time

from hpcflow import Step, Workflow
from hpcflow.python import OP, OPIO, OPIOSign, PythonOPTemplate, upload_packages


class Slow(OP):
    progress_total = 6

    @classmethod
    def get_input_sign(cls):
        return OPIOSign({"pause": float})

    @classmethod
    def get_output_sign(cls):
        return OPIOSign({"done": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        for i in range(6):
            time.sleep(op_in["pause"])
            self.progress_current = i + 1
        return OPIO({"done": 6})


def test_progress_is_visible_while_running(hpc_home):
    wf = Workflow("progress")
    wf.add(Step("slow", PythonOPTemplate(Slow), parameters={"pause": 1.0}))
    wf.submit()
    seen = set()
    deadline = time.time() + 60
    while wf.query_status() in ("Pending", "Running") and time.time() < deadline:
        steps = wf.query_step(name="slow")
        if steps and steps[0].progress:
            seen.add(steps[0].progress)
        time.sleep(0.1)
    assert wf.query_status() == "Succeeded"
    assert wf.query_step(name="slow")[0].progress == "6/6"
    assert seen - {"6/6"}, f"no progress seen while running: {seen}"


@OP.function
def use_package(x: int) -> {"y": int}:
    import hpcflow_test_pkg  # only importable through python_packages / upload_packages

    return {"y": hpcflow_test_pkg.triple(x)}


def test_python_packages_and_upload_packages(hpc_home, tmp_path):
    package = tmp_path / "pkgs" / "hpcflow_test_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def triple(x):\n    return 3 * x\n")
    with_pkg = Step("with", PythonOPTemplate(use_package, python_packages=[str(package)]),
                    parameters={"x": 2})
    without = Step("without", PythonOPTemplate(use_package), parameters={"x": 2},
                   continue_on_failed=True)
    wf = Workflow("packages")
    wf.add([with_pkg, without])
    wf.submit()
    assert wf.wait(timeout=60) == "Succeeded"
    assert wf.query_step(name="with")[0].outputs.parameters["y"].value == 6
    failed = wf.query_step(name="without")[0]
    assert failed.phase == "Failed" and "ModuleNotFoundError" in failed.reason

    upload_packages.append(str(package))
    try:
        wf2 = Workflow("global-packages")
        wf2.add(Step("s", PythonOPTemplate(use_package), parameters={"x": 5}))
        wf2.submit()
    finally:
        upload_packages.remove(str(package))
    assert wf2.wait(timeout=60) == "Succeeded"
    assert wf2.query_step(name="s")[0].outputs.parameters["y"].value == 15
