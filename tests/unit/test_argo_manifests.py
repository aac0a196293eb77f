"""The Kubernetes objects in manifests/argo/ (what a cluster admin applies for hpcflow's Argo
offload) are well formed, stay in the namespace ``hpcflow``, and give hpcflow's two
ServiceAccounts exactly the rights of the calls made with them: no more, no less.

Kubernetes cannot run here, so the rights are checked against a table of the Argo Server
routes hpcflow calls and the Kubernetes verbs the server takes for each with the caller's
token (Argo v3.7, ``--auth-mode=client``)."""

import copy
import re
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

ARGO = REPO / "manifests" / "argo"
NAMESPACE = "hpcflow"
DAEMON_SA = "hpcflow"
WORKFLOW_SA = "hpcflow-workflow"
S3_SECRET = "hpcflow-s3"
S3_KEYS = {"accesskey", "secretkey"}
PART_OF = "app.kubernetes.io/part-of"

Right = tuple[str, str, str]  # (apiGroup, resource, verb)
WF = "argoproj.io"


def _workflows(*verbs: str) -> set[Right]:
    return {(WF, "workflows", verb) for verb in verbs}


#: Every Argo Server route hpcflow calls -> the Kubernetes rights the server uses with the
#: caller's token. Where Argo v3.7.18 shows it: the handlers of server/workflow/workflow_server.go
#: (each reads the Workflow through getWorkflow first; ListWorkflows checks `list` with a
#: SelfSubjectAccessReview, auth.CanI, and answers from its informer and archive);
#: terminate is util.TerminateWorkflow -> patchShutdownStrategy (a merge patch) in
#: workflow/util/util.go; logs are util/logs/workflow-logger.go (pods watch + list by the
#: workflow label, pods/log get for each pod, the Workflow watched while following), and
#: docs/security.md's read-only UI role lists pods, pods/log for the same reason. The
#: SelfSubjectAccessReview itself is allowed to everyone by Kubernetes' system:basic-user.
ARGO_SERVER_CALLS: dict[str, set[Right]] = {
    # submit a step attempt's Workflow (WorkflowService_CreateWorkflow)
    "POST /api/v1/workflows/{namespace}": _workflows("create"),
    # the one list per poll, `hpcflow doctor` (WorkflowService_ListWorkflows)
    "GET /api/v1/workflows/{namespace}": _workflows("list"),
    # adopt after 409 AlreadyExists (WorkflowService_GetWorkflow)
    "GET /api/v1/workflows/{namespace}/{name}": _workflows("get"),
    # clean-up after collecting results (WorkflowService_DeleteWorkflow, force=false)
    "DELETE /api/v1/workflows/{namespace}/{name}": _workflows("get", "delete"),
    # `hpcflow terminate` (WorkflowService_TerminateWorkflow)
    "PUT /api/v1/workflows/{namespace}/{name}/terminate": _workflows("get", "patch"),
    # watch (WorkflowService_WatchWorkflows)
    "GET /api/v1/workflow-events/{namespace}": _workflows("get", "watch"),
    # `hpcflow logs`, the tail kept with a failed step; follow=true adds the Workflow watch
    # (WorkflowService_WorkflowLogs and WorkflowService_PodLogs)
    "GET /api/v1/workflows/{namespace}/{name}/log":
        _workflows("get", "watch") | {("", "pods", "list"), ("", "pods", "watch"),
                                      ("", "pods/log", "get")},
    "GET /api/v1/workflows/{namespace}/{name}/{podName}/log":
        _workflows("get", "watch") | {("", "pods", "list"), ("", "pods", "watch"),
                                      ("", "pods/log", "get")},
    # server version and the token's identity (InfoService): no Kubernetes call
    "GET /api/v1/version": set(),
    "GET /api/v1/userinfo": set(),
}

#: What the emissary executor of Argo v3.7 does with the pod's own token: the wait container
#: creates its node's WorkflowTaskResult and patches it (outputs, then the completed label):
#: workflow/executor/taskresult.go and FinalizeOutput in executor.go; docs/workflow-rbac.md
#: ("the minimum for the executor", >= v3.4) and manifests/quick-start/.../executor-role.yaml.
#: Artifact keys come from a Secret volume the controller mounts (executor.go GetSecret).
EMISSARY_EXECUTOR: set[Right] = {(WF, "workflowtaskresults", "create"),
                                 (WF, "workflowtaskresults", "patch")}

FILES = {"namespace.yaml", "serviceaccount.yaml", "executor-rbac.yaml", "token-secret.yaml",
         "s3-secret.yaml"}
CLUSTER_SCOPED = {"Namespace"}


def load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((ARGO / name).read_text()) if doc is not None]


def all_docs() -> list[dict[str, Any]]:
    return [doc for name in sorted(FILES) for doc in load(name)]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in all_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def rights(role: dict[str, Any]) -> set[Right]:
    return {(group, resource, verb) for rule in role.get("rules", [])
            for group in rule.get("apiGroups", []) for resource in rule.get("resources", [])
            for verb in rule.get("verbs", [])}


def role_problems(role: dict[str, Any], needed: set[Right]) -> list[str]:
    """What is wrong with ``role`` for a client that needs exactly ``needed``."""
    granted = rights(role)
    problems = [f"missing {r}" for r in sorted(needed - granted)]
    problems += [f"beyond what is called: {r}" for r in sorted(granted - needed)]
    for rule in role.get("rules", []):
        if any("*" in rule.get(k, []) for k in ("apiGroups", "resources", "verbs")):
            problems.append(f"wildcard in {rule}")
        if "secrets" in rule.get("resources", []):
            problems.append(f"secrets access in {rule}")
        if rule.get("nonResourceURLs") or rule.get("resourceNames"):
            problems.append(f"nonResourceURLs/resourceNames in {rule}")
    return problems


def test_every_document_parses_and_names_itself() -> None:
    assert {p.name for p in ARGO.glob("*.y*ml")} == FILES
    docs = all_docs()
    assert docs
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), where
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], where
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, where
    assert find("Namespace", NAMESPACE)
    # hpcflow asks for nothing cluster-wide
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_the_documented_apply_skips_only_the_s3_template() -> None:
    """`kubectl apply -f manifests/argo/ -l app.kubernetes.io/part-of=hpcflow` applies every
    object but the S3 template, so running it again never resets the real keys."""
    for doc in all_docs():
        labelled = (doc["metadata"].get("labels") or {}).get(PART_OF) == "hpcflow"
        is_template = (doc["kind"], doc["metadata"]["name"]) == ("Secret", S3_SECRET)
        assert labelled != is_template, doc["metadata"]["name"]


def test_role_bindings_bind_the_accounts_of_these_files_to_their_roles() -> None:
    accounts = {d["metadata"]["name"] for d in all_docs() if d["kind"] == "ServiceAccount"}
    assert accounts == {DAEMON_SA, WORKFLOW_SA}
    roles = {d["metadata"]["name"] for d in all_docs() if d["kind"] == "Role"}
    bound: dict[str, set[str]] = {}
    for binding in (d for d in all_docs() if d["kind"] == "RoleBinding"):
        ref = binding["roleRef"]
        assert (ref["apiGroup"], ref["kind"]) == ("rbac.authorization.k8s.io", "Role")
        assert ref["name"] in roles
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
            assert subject["namespace"] == NAMESPACE
            bound.setdefault(subject["name"], set()).add(ref["name"])
    assert bound == {DAEMON_SA: {"hpcflow"}, WORKFLOW_SA: {"hpcflow-workflow"}}


def test_the_daemon_role_allows_exactly_the_calls_hpcflow_makes() -> None:
    needed = set().union(*ARGO_SERVER_CALLS.values())
    assert role_problems(find("Role", "hpcflow"), needed) == []


def test_the_executor_role_allows_exactly_what_the_emissary_executor_needs() -> None:
    assert role_problems(find("Role", "hpcflow-workflow"), EMISSARY_EXECUTOR) == []


@pytest.mark.parametrize("change", ["drop a verb", "add *", "add a verb", "add secrets"])
def test_a_changed_role_is_caught(change: str) -> None:
    """The checks above fail when a verb is removed or anything (a ``*``) is added."""
    needed = set().union(*ARGO_SERVER_CALLS.values())
    role = copy.deepcopy(find("Role", "hpcflow"))
    rules = role["rules"]
    if change == "drop a verb":
        rule = next(r for r in rules if r["verbs"] == ["patch"])
        rules.remove(rule)
    elif change == "add *":
        rules[0]["verbs"] = ["*"]
    elif change == "add a verb":
        rules.append({"apiGroups": [WF], "resources": ["workflows"], "verbs": ["update"]})
    else:
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    assert role_problems(role, needed)


def test_the_token_secret_belongs_to_the_daemon_account() -> None:
    [secret] = load("token-secret.yaml")
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == DAEMON_SA
    assert "data" not in secret and "stringData" not in secret  # Kubernetes fills in the token


def test_the_s3_secret_is_a_template_with_placeholders_only() -> None:
    [secret] = load("s3-secret.yaml")
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", S3_SECRET)
    assert "data" not in secret
    assert set(secret["stringData"]) == S3_KEYS
    for key, value in secret["stringData"].items():
        assert re.fullmatch(r"REPLACE-WITH-[A-Z0-9-]+", value), key
    assert "never" in (ARGO / "s3-secret.yaml").read_text().lower()


def test_the_readme_says_how_to_apply_get_the_token_check_and_configure() -> None:
    text = (ARGO / "README.md").read_text()
    for name in FILES:
        assert f"({name})" in text, name
    assert "kubectl apply -f manifests/argo/ -l app.kubernetes.io/part-of=hpcflow" in text
    assert "umask 077" in text and "{.data.token}" in text and "base64 -d" in text
    assert "kubectl auth can-i --as=" in text
    for key in ("server", "namespace", "token_file", "service_account", "artifact_secret",
                "ca_bundle", "verify_tls"):
        assert re.search(rf"^{key} = ", text, re.M), key
    for key in S3_KEYS:
        assert f"`{key}`" in text
    for route in ARGO_SERVER_CALLS:
        shown = route.replace("{namespace}", "{ns}").replace("{podName}", "{pod}")
        assert f"`{shown}`" in text, route
