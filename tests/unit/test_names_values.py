import pytest

from hpcflow import values
from hpcflow.errors import WorkflowDefinitionError
from hpcflow.names import (
    check_io_name,
    check_key,
    check_step_name,
    check_template_name,
    check_workflow_name,
)


@pytest.mark.parametrize("name", ["my-name", "a", "a.b-c", "x" * 57])
def test_good_workflow_names(name):
    check_workflow_name(name)


@pytest.mark.parametrize("name", ["My-name", "-a", "a-", "a_b", "x" * 58, ""])
def test_bad_workflow_names_quote_the_rule(name):
    with pytest.raises(WorkflowDefinitionError, match="RFC 1123"):
        check_workflow_name(name)


def test_step_io_key_and_template_rules():
    check_step_name("My-name1-2")
    check_step_name("123-NAME")
    with pytest.raises(WorkflowDefinitionError, match="alphanumeric characters or '-'"):
        check_step_name("bad_name")
    check_io_name("my_param_1")
    check_io_name("MY-PARAM-1")
    with pytest.raises(WorkflowDefinitionError):
        check_io_name("my param")
    check_key("iter-1-")  # dflow's rule: no '.', may end with '-'
    check_key("{{inputs.parameters.block_id}}--prep-train")
    for bad in ("Iter-1", "iter-1.a", "Step_{{item}}"):
        with pytest.raises(WorkflowDefinitionError):
            check_key(bad)
    with pytest.raises(WorkflowDefinitionError):
        check_template_name("Bad")


@pytest.mark.parametrize("value", [1, 2.5, "s", None, True, [1, [2]], {"a": {"b": [1]}}])
def test_plain_values_stay_json(value):
    text = values.encode(value)
    assert values.PICKLE_TAG not in text
    assert values.decode(text) == value


@pytest.mark.parametrize("value", [(1, 2), {1, 2}, {1: "int key"}, float("nan")])
def test_other_values_round_trip_with_their_type(value):
    back = values.decode(values.encode(value))
    assert type(back) is type(value)
    if value == value:
        assert back == value


def test_a_bad_template_name_is_quoted_as_written():
    """dflow lowercases template names; the error names what the user wrote."""
    from hpcflow import Steps
    from hpcflow.errors import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError, match="template name 'Bad_Steps' breaks"):
        Steps(name="Bad_Steps")
