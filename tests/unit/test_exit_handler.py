"""The exit handler's pure decisions: the workflow's end once it ended (Argo's rule), what its
steps read (Argo's text), and which steps a retry drops so that it runs again."""

import json

import pytest

from hpcflow.daemon.exit_handler import final_phase, workflow_globals
from hpcflow.daemon.retry import RetryRow, exit_handler_rows


@pytest.mark.parametrize(("entry", "handler", "expected"), [
    ("Succeeded", "Succeeded", ("Succeeded", "all done")),
    ("Succeeded", "Skipped", ("Succeeded", "all done")),
    ("Succeeded", "Failed", ("Failed", "exit handler: mail server down")),
    ("Succeeded", "Error", ("Error", "exit handler: mail server down")),
    ("Succeeded", "Omitted", ("Failed", "exit handler: mail server down")),
    ("Failed", "Succeeded", ("Failed", "all done")),
    ("Failed", "Error", ("Failed", "all done")),
    ("Error", "Failed", ("Error", "all done")),
])
def test_the_workflow_ends_with_its_steps_unless_only_the_handler_failed(entry, handler,
                                                                          expected):
    assert final_phase(entry, "all done", handler, "mail server down") == expected


def test_a_handler_that_failed_without_a_reason_says_its_phase():
    assert final_phase("Succeeded", None, "Error", None) == ("Error", "exit handler: error")


def test_failures_are_argos_text():
    rows = [{"id": 7, "name": "b", "template": "boom", "phase": "Error",
             "reason": 'said "no" \u00e9', "finished_at": 86400.5}]
    globals_ = workflow_globals("Error", rows)
    assert globals_["status"] == "Error"
    text = globals_["failures"]
    # a quoted string (Go's strconv.Quote of the compact JSON), as Argo substitutes it
    assert text.startswith('"[{') and text.endswith('}]"') and "\u00e9" in text
    inner = json.loads(text)
    assert '", "' not in inner  # compact, as Go's json.Marshal writes it
    assert json.loads(inner) == [{
        "displayName": "b", "message": 'said "no" \u00e9', "templateName": "boom",
        "phase": "Error", "podName": "7", "finishedAt": "1970-01-02T00:00:00Z"}]
    assert workflow_globals("Succeeded", [])["failures"] == '"null"'


def test_a_retry_drops_the_handler_and_everything_under_it_only():
    rows = [RetryRow(1, 0, "Steps", "Failed", False, "root", "main"),
            RetryRow(2, 1, "Pod", "Failed", True, "0.a", "t"),
            RetryRow(3, 0, "Steps", "Succeeded", False, "onExit", "handler"),
            RetryRow(4, 3, "Steps", "Succeeded", False, "0.inner", "inner"),
            RetryRow(5, 4, "Pod", "Succeeded", True, "0.note", "t")]
    assert exit_handler_rows(rows) == [3, 4, 5]
    assert exit_handler_rows(rows[:2]) == []
