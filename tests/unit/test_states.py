import pytest

from hpcflow.daemon import states


@pytest.mark.parametrize("current,new", [
    (None, "Pending"), ("Pending", "Running"), ("Running", "Succeeded"), ("Running", "Failed"),
    ("Pending", "Skipped"), ("Pending", "Omitted"), ("Failed", "Pending"), ("Running", "Pending"),
])
def test_allowed_step_transitions(current, new):
    states.check_step_transition(current, new)


@pytest.mark.parametrize("current,new", [
    ("Succeeded", "Running"), ("Skipped", "Pending"), ("Omitted", "Running"),
    ("Pending", "Pending"), (None, "Terminated"), ("Running", "Skipped"),
])
def test_forbidden_step_transitions_raise(current, new):
    with pytest.raises(states.InvalidTransition, match=f"from {current} to {new}"):
        states.check_step_transition(current, new)


def test_workflow_transitions():
    states.check_workflow_transition(None, "Pending")
    states.check_workflow_transition("Pending", "Running")
    states.check_workflow_transition("Running", "Terminated")
    states.check_workflow_transition("Terminated", "Running")  # retried, as in Argo
    for current, new in [("Succeeded", "Running"), ("Terminated", "Succeeded"),
                         (None, "Running"), ("Running", "Pending")]:
        with pytest.raises(states.InvalidTransition):
            states.check_workflow_transition(current, new)


def test_every_phase_named_in_the_tables_is_argo_vocabulary():
    argo = {"Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted",
            "Terminated"}
    for table in (states.STEP_TRANSITIONS, states.WORKFLOW_TRANSITIONS):
        for current, targets in table.items():
            assert current is None or current in argo
            assert set(targets) <= argo


def test_workflow_phase_follows_root():
    assert states.workflow_phase_for_root("Succeeded") == "Succeeded"
    assert states.workflow_phase_for_root("Failed") == "Failed"
    assert states.workflow_phase_for_root("Error") == "Error"
    assert states.workflow_phase_for_root("Running") is None
