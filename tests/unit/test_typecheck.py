from pathlib import Path
from typing import Dict, List, Optional

import pytest

from hpcflow.python import OP, OPIO, Artifact, OPIOSign, OPSignError, Parameter
from hpcflow.python.op import check_opio
from hpcflow.python.typecheck import matches


@pytest.mark.parametrize("value,type_,ok", [
    (1, int, True), (1, float, True), (1.5, int, False), ("a", str, True), (True, int, True),
    ([1, 2], List[int], True), ([1, "a"], List[int], False), ({"a": 1}, Dict[str, int], True),
    ({"a": "x"}, Dict[str, int], False),
    (None, Optional[int], True), ("x", Optional[int], False),  # noqa: UP045
    ([[1]], List[List[int]], True), ((1, 2), tuple, True), (1, list, False),
])
def test_matches(value, type_, ok):
    assert matches(value, type_) is ok


def test_error_names_op_field_expected_and_actual():
    sign = OPIOSign({"n": int, "a": Artifact(Path)})
    with pytest.raises(OPSignError) as err:
        check_opio("Sum", "output", sign, {"n": "three", "a": Path("x")})
    text = str(err.value)
    assert "Sum" in text and "'n'" in text and "int" in text and "str" in text


def test_missing_output_and_optional_artifact():
    sign = OPIOSign({"a": Artifact(Path, optional=True), "p": Parameter(int, default=2)})
    check_opio("X", "input", sign, {})
    with pytest.raises(OPSignError, match="missing"):
        check_opio("X", "output", OPIOSign({"n": int}), {})


def test_exec_sign_check_checks_both_ways():
    class Half(OP):
        @classmethod
        def get_input_sign(cls):
            return OPIOSign({"x": int})

        @classmethod
        def get_output_sign(cls):
            return OPIOSign({"y": int})

        @OP.exec_sign_check
        def execute(self, op_in):
            return OPIO({"y": op_in["x"] / 2})

    with pytest.raises(OPSignError, match="input 'x'"):
        Half().execute(OPIO({"x": "4"}))
    with pytest.raises(OPSignError, match="output 'y': expected int, got float"):
        Half().execute(OPIO({"x": 3}))


def test_function_op_with_string_annotations():
    ns: dict = {}
    exec("from __future__ import annotations\n"
         "from pathlib import Path\n"
         "from hpcflow.python import OP, Artifact\n"
         "@OP.function\n"
         "def f(x: int, a: Artifact(Path)) -> {'y': int}:\n"
         "    return {'y': x}\n", ns)
    f = ns["f"]
    assert f.get_input_sign()["x"] is int and isinstance(f.get_input_sign()["a"], Artifact)
    assert f.get_output_sign()["y"] is int


def test_function_op_signs_from_annotations():
    @OP.function
    def f(x: int, files: Artifact(List[Path]), scale: float = 2.0) -> {"y": float}:
        return {"y": x * scale}

    inputs = f.get_input_sign()
    assert inputs["x"] is int
    assert isinstance(inputs["files"], Artifact) and inputs["files"].kind == "list"
    assert inputs["scale"].default == 2.0
    assert f().execute(OPIO({"x": 2, "files": [], "scale": 3.0}))["y"] == 6.0
    with pytest.raises(OPSignError):
        f().execute(OPIO({"x": "2", "files": []}))
