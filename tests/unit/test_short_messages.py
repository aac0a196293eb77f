"""Error messages quote values through ``reprlib``: a value of megabytes gives a line, not
megabytes (the message ends up in a step's reason, the store and every ``hpcflow steps``)."""

import threading

import pytest

from hpcflow.daemon.conditions import ConditionError, evaluate, is_true
from hpcflow.daemon.loops import loop_items
from hpcflow.daemon.resolve import ResolveError, Scope
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.python.typecheck import describe
from hpcflow.spec import SpecBuilder

HUGE = "x" * 5_000_000


def test_a_condition_on_a_huge_value_quotes_it_short() -> None:
    scope = Scope(inputs={"parameters": {"s": HUGE, "n": list(range(10**6))}})
    for text in ("{{inputs.parameters.s}} > 3", "{{inputs.parameters.s}} - 1"):
        with pytest.raises(ConditionError) as caught:
            evaluate(text, scope)
        assert len(str(caught.value)) < 300 and "xxx...xxx" in str(caught.value)
    with pytest.raises(ConditionError) as caught:
        is_true("{{inputs.parameters.s}}", scope)
    assert len(str(caught.value)) < 300


def test_a_loop_bound_that_is_a_huge_value_is_quoted_short() -> None:
    scope = Scope(inputs={"parameters": {"s": HUGE}})
    with pytest.raises(ResolveError) as caught:
        loop_items({"with_param": {"kind": "range", "end": {"expr": "{{inputs.parameters.s}}"}},
                    "with_sequence": None}, scope)
    assert len(str(caught.value)) < 300


def test_a_value_that_cannot_be_stored_is_quoted_short() -> None:
    with pytest.raises(WorkflowDefinitionError) as caught:
        SpecBuilder().value_spec([HUGE, threading.Lock()], "step 's' parameter 'x'")
    assert len(str(caught.value)) < 500 and "cannot be stored" in str(caught.value)
    assert len(describe(list(range(10**6)))) < 100
