"""``retry.plan_restart``: which steps a restart of succeeded steps resets, reopens and
removes (pure; the engine's use of it is in ``tests/e2e/test_cli_restart.py``)."""

from hpcflow.daemon.retry import RetryPlan, RetryRow, merge, plan_restart, plan_retry_steps

OK = "Succeeded"


def test_a_loop_item_restarts_alone_and_what_follows_the_loop_is_planned_anew():
    rows = [RetryRow(1, 0, "Steps", OK, False, "", "main"),
            RetryRow(2, 1, "StepGroup", OK, False, "0.fan"),
            RetryRow(3, 2, "Pod", OK, True, "0"), RetryRow(4, 2, "Pod", OK, True, "1"),
            RetryRow(5, 1, "Pod", OK, True, "1.sum")]
    assert plan_restart(rows, [4], {}) == RetryPlan(pods=[4], containers=[1, 2], removed=[5])


def test_steps_of_the_same_group_stay_and_later_groups_go_with_their_children():
    rows = [RetryRow(1, 0, "Steps", OK, False, "", "main"),
            RetryRow(2, 1, "Pod", OK, True, "0.a"), RetryRow(3, 1, "Pod", OK, True, "0.b"),
            RetryRow(4, 1, "Steps", OK, False, "1.inner", "inner"),
            RetryRow(5, 4, "Pod", OK, True, "0.x"), RetryRow(6, 1, "Pod", OK, True, "2.z")]
    assert plan_restart(rows, [2], {}) == RetryPlan(pods=[2], containers=[1],
                                                    removed=[4, 5, 6])


def test_a_chosen_step_that_another_removes_is_made_anew_not_restarted():
    rows = [RetryRow(1, 0, "Steps", OK, False, "", "main"),
            RetryRow(2, 1, "Pod", OK, True, "0.a"),
            RetryRow(3, 1, "Steps", OK, False, "1.inner", "inner"),
            RetryRow(4, 3, "Pod", OK, True, "0.x")]
    assert plan_restart(rows, [2, 4], {}) == RetryPlan(pods=[2], containers=[1], removed=[3, 4])


def test_only_dependents_of_a_dag_task_go_transitively_and_its_omitted_tasks():
    templates = {"d": {"tasks": [
        {"name": "a", "dependencies": []}, {"name": "b", "dependencies": ["a"]},
        {"name": "c", "dependencies": ["b"]}, {"name": "d", "dependencies": []},
        {"name": "e", "dependencies": ["d"]}]}}
    rows = [RetryRow(1, 0, "DAG", "Failed", False, "", "d"),
            RetryRow(2, 1, "Pod", OK, True, "a"), RetryRow(3, 1, "Pod", OK, True, "b"),
            RetryRow(4, 1, "Pod", OK, True, "c"), RetryRow(5, 1, "Pod", "Failed", True, "d"),
            RetryRow(6, 1, "Pod", "Omitted", False, "e")]
    restart = plan_restart(rows, [2], templates)
    assert restart == RetryPlan(pods=[2], containers=[1], removed=[3, 4, 6])
    # with the failed task chosen too: both run again, one plan
    both = merge(restart, plan_retry_steps(rows, [5]))
    assert both == RetryPlan(pods=[2, 5], containers=[1], removed=[3, 4, 6])


def test_running_containers_are_not_reopened():
    rows = [RetryRow(1, 0, "Steps", "Running", False, "", "main"),
            RetryRow(2, 1, "Pod", OK, True, "0.a")]
    assert plan_restart(rows, [2], {}) == RetryPlan(pods=[2], containers=[], removed=[])
