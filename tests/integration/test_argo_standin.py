"""The STAND-IN Argo Server (tests/services/argo_standin), not Argo: Kubernetes and Argo cannot
run here, so hpcflow's Argo executor is tested against this stand-in. These tests check that
the stand-in speaks Argo v3.7.18's REST API as the ``argo-workflows`` SDK uses it (create,
list with a label selector and trimmed ``fields``, get, log, terminate, delete; 401/403/404/409
and schema errors with grpc-gateway bodies), that its simulated controller runs pods as local
processes with S3 artifacts on the real Ceph RGW, and that its faults, deadlines, outage and
call counting behave as documented in the stand-in's modules.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from argo_workflows import ApiClient, Configuration
from argo_workflows.api.info_service_api import InfoServiceApi
from argo_workflows.api.workflow_service_api import WorkflowServiceApi
from argo_workflows.exceptions import ApiException

from tests.integration.conftest import s3_boto
from tests.services.argo_standin.launcher import StandinArgo
from tests.services.argo_standin.selectors import FieldCleaner, label_selector

FINAL = ("Succeeded", "Failed", "Error")
PY = "python3"


def wait_for(cond: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sdk(argo: StandinArgo, token: str | None = None, ca: str | None = None,
        retries: int | None = None) -> tuple[WorkflowServiceApi, InfoServiceApi]:
    cfg = Configuration(host=argo.url)
    if token is not None:
        cfg.api_key["BearerToken"] = token
        cfg.api_key_prefix["BearerToken"] = "Bearer"
    if ca is not None:
        cfg.ssl_ca_cert = ca
    if retries is not None:
        cfg.retries = retries
    client = ApiClient(cfg)
    return WorkflowServiceApi(client), InfoServiceApi(client)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def workflow(wf_name: str, templates: list[dict[str, Any]], entrypoint: str = "main",
             labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": wf_name, "labels": labels or {}},
            "spec": {"entrypoint": entrypoint, "templates": templates, **spec}}


def container(tmpl_name: str, code: str, image: str = "python:3.11", **extra: Any) -> dict:
    return {"name": tmpl_name, "container": {"image": image, "command": [PY, "-c"],
                                             "args": [code]}, **extra}


def create(api: WorkflowServiceApi, ns: str, wf: dict[str, Any]) -> dict[str, Any]:
    resp = api.create_workflow(ns, {"workflow": wf}, _check_return_type=False,
                               _preload_content=False)
    return json.loads(resp.data)


def get(api: WorkflowServiceApi, ns: str, wf_name: str, **kw: Any) -> dict[str, Any]:
    return json.loads(api.get_workflow(ns, wf_name, _preload_content=False, **kw).data)


def finished(api: WorkflowServiceApi, ns: str, wf_name: str, timeout: float = 120) -> dict:
    return wait_for(lambda: (w := get(api, ns, wf_name))["status"].get("phase") in FINAL and w,
                    timeout, f"workflow {wf_name} to finish")


def post_raw(argo: StandinArgo, route: str, body: Any) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(argo.url + route, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {argo.token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def root_node(api: WorkflowServiceApi, ns: str, wf_name: str) -> dict[str, Any]:
    """The workflow's root node so far ({} before the controller made it)."""
    return dict(get(api, ns, wf_name)["status"].get("nodes", {}).get(wf_name, {}))


def pod_nodes(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]


def error_body(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


@pytest.fixture
def api(argo_server: StandinArgo) -> WorkflowServiceApi:
    return sdk(argo_server, argo_server.token)[0]


# -- the happy path -------------------------------------------------------------------------------
def test_create_list_succeed_outputs_and_log(argo_server: StandinArgo, api, s3_env) -> None:
    ns, wf_name = argo_server.namespace, name("ok")
    boto = s3_boto(s3_env)
    boto.put_object(Bucket=argo_server.bucket, Key=f"inputs/{wf_name}/data.txt",
                    Body=b"from s3\n")
    code = ("import os; data = open('in/data.txt').read() + open('in/raw.txt').read();"
            "os.makedirs('out', exist_ok=True);"
            "open('out/result.txt', 'w').write(data.upper());"
            "open('out/param.txt', 'w')"
            ".write('{{inputs.parameters.greeting}}-{{workflow.name}}\\n');"
            "print('password length:', len(os.environ['PASSWORD']), 'cwd', os.getcwd())")
    work = container("work", code, image="registry.example/tools:1.2", inputs={
        "parameters": [{"name": "greeting"}],
        "artifacts": [{"name": "data", "path": "/work/in/data.txt",
                       "s3": {"key": f"inputs/{wf_name}/data.txt"}},
                      {"name": "raw", "path": "/work/in/raw.txt", "raw": {"data": "and raw\n"}}]},
        outputs={"parameters": [{"name": "p", "valueFrom": {"path": "/work/out/param.txt"}}],
                 "artifacts": [{"name": "tree", "path": "/work/out"},
                               {"name": "single", "path": "/work/out/result.txt",
                                "archive": {"none": {}},
                                "s3": {"key": f"outputs/{wf_name}/result.txt"}},
                               {"name": "absent", "path": "/work/nothing", "optional": True}]})
    work["container"].update(
        workingDir="/work", env=[{"name": "PASSWORD", "valueFrom": {
            "secretKeyRef": {"name": "app-secret", "key": "password"}}}],
        resources={"requests": {"cpu": "500m", "memory": "256Mi"},
                   "limits": {"nvidia.com/gpu": "1"}})
    work["nodeSelector"] = {"pool": "gpu"}
    dag = {"name": "main", "dag": {"tasks": [
        {"name": "one", "template": "work",
         "arguments": {"parameters": [{"name": "greeting", "value": "hello"}]}}]}}
    created = create(api, ns, workflow(wf_name, [dag, work], labels={"hpcflow.io/run": wf_name}))
    assert created["metadata"]["name"] == wf_name and created["metadata"]["uid"]
    assert created["metadata"]["creationTimestamp"] and created["metadata"]["resourceVersion"]

    listed = json.loads(api.list_workflows(
        ns, list_options_label_selector=f"hpcflow.io/run in ({wf_name},other),hpcflow.io/run",
        fields="items.metadata.name,items.status.phase", _preload_content=False).data)
    assert [item["metadata"] for item in listed["items"]] == [{"name": wf_name}]
    assert set(listed) == {"items"} and set(listed["items"][0]) <= {"metadata", "status"}

    wf = finished(api, ns, wf_name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    (node,) = pod_nodes(wf)
    assert node["displayName"] == "one" and node["templateName"] == "work"
    assert node["name"] == f"{wf_name}.one" and node["boundaryID"] == wf_name
    assert wf["status"]["nodes"][wf_name]["type"] == "DAG"
    assert wf["status"]["nodes"][wf_name]["children"] == [node["id"]]
    outputs = node["outputs"]
    assert outputs["exitCode"] == "0"
    assert outputs["parameters"][0]["value"] == f"hello-{wf_name}"
    arts = {a["name"]: a for a in outputs["artifacts"]}
    assert set(arts) == {"tree", "single"}
    single = boto.get_object(Bucket=argo_server.bucket, Key=arts["single"]["s3"]["key"])
    assert single["Body"].read() == b"FROM S3\nAND RAW\n"
    tgz = boto.get_object(Bucket=argo_server.bucket, Key=arts["tree"]["s3"]["key"])["Body"].read()
    assert arts["tree"]["s3"]["key"].endswith("/tree.tgz")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tgz))) as tar:
        assert "out/result.txt" in tar.getnames()

    logs = api.workflow_logs(ns, wf_name, log_options_container="main", _preload_content=False)
    lines = [json.loads(line)["result"] for line in logs.data.decode().splitlines()]
    pod = lines[0]["podName"]
    assert pod.startswith(f"{wf_name}-work-")
    assert lines[0]["content"].startswith("password length: 12 cwd ")
    assert lines[0]["content"].endswith("/work")
    grep = api.pod_logs(ns, wf_name, pod, grep="nomatch", _preload_content=False)
    assert grep.data == b""

    trimmed = json.loads(api.list_workflows(ns, fields="-items.status.nodes",
                                            list_options_label_selector=f"hpcflow.io/run={wf_name}",
                                            _preload_content=False).data)
    assert "nodes" not in trimmed["items"][0]["status"]
    assert trimmed["items"][0]["status"]["phase"] == "Succeeded"

    (record,) = [w for w in argo_server.workflows() if w["name"] == wf_name]
    (pod_record,) = record["pods"]
    assert pod_record["image"] == "registry.example/tools:1.2"
    assert pod_record["env"] == ["PASSWORD"] and "s3cret-value" not in json.dumps(record)
    assert pod_record["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert pod_record["nodeSelector"] == {"pool": "gpu"}


def test_log_follow_and_tail_lines(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("follow")
    code = ("import time\nfor i in range(5):\n    print('line', i, flush=True)\n"
            "    time.sleep(0.5)\n")
    create(api, ns, workflow(wf_name, [container("main", code)]))
    wait_for(lambda: root_node(api, ns, wf_name).get("phase") == "Running", 90, "the pod to run")
    stream = api.workflow_logs(ns, wf_name, log_options_follow=True, _preload_content=False)
    followed = [json.loads(line)["result"]["content"] for line in stream]
    assert followed == [f"line {i}" for i in range(5)]
    assert get(api, ns, wf_name)["status"]["phase"] == "Succeeded"
    tail = api.workflow_logs(ns, wf_name, log_options_tail_lines="2", _preload_content=False)
    assert [json.loads(x)["result"]["content"] for x in tail.data.decode().splitlines()] == [
        "line 3", "line 4"]


def test_steps_pass_outputs_and_report_a_failed_child(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("steps")
    emit = container("emit", "open('v.txt', 'w').write('42')",
                     outputs={"parameters": [{"name": "v", "valueFrom": {"path": "/v.txt"}}]})
    check = container("check",
                      "import sys; sys.exit(0 if '{{inputs.parameters.v}}' == '42' else 5)",
                      inputs={"parameters": [{"name": "v"}]})
    fail = container("fail", "import sys; sys.exit(2)")
    steps = {"name": "main", "steps": [
        [{"name": "a", "template": "emit"}],
        [{"name": "b", "template": "check", "arguments": {
            "parameters": [{"name": "v", "value": "{{steps.a.outputs.parameters.v}}"}]}},
         {"name": "c", "template": "fail"}]]}
    create(api, ns, workflow(wf_name, [steps, emit, check, fail]))
    wf = finished(api, ns, wf_name)
    nodes = {n["displayName"]: n for n in wf["status"]["nodes"].values()}
    assert nodes["b"]["phase"] == "Succeeded"
    assert nodes["c"]["message"] == "main: Error (exit code 2)"
    assert nodes["[1]"]["type"] == "StepGroup"
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == f"child '{nodes['c']['id']}' failed"


# -- errors as the gateway sends them -------------------------------------------------------------
def test_duplicate_create_is_409_already_exists(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("dup")
    wf = workflow(wf_name, [container("main", "pass")])
    create(api, ns, wf)
    with pytest.raises(ApiException) as err:
        create(api, ns, wf)
    assert err.value.status == 409
    assert error_body(err.value) == {
        "code": 6, "message": f'workflows.argoproj.io "{wf_name}" already exists'}
    with pytest.raises(ApiException) as missing:
        get(api, ns, "no-such-workflow")
    assert missing.value.status == 404
    assert error_body(missing.value) == {
        "code": 5, "message": 'workflows.argoproj.io "no-such-workflow" not found'}


def test_401_and_403_bodies(argo_server) -> None:
    ns = argo_server.namespace
    for token, message in ((None, "token not valid. see "
                                  "https://argo-workflows.readthedocs.io/en/latest/faq/"),
                           ("wrong-token", "Unauthorized")):
        with pytest.raises(ApiException) as err:
            sdk(argo_server, token)[0].list_workflows(ns, _preload_content=False)
        assert err.value.status == 401
        assert error_body(err.value) == {"code": 16, "message": message}
    other = sdk(argo_server, "other-namespace-token")[0]
    with pytest.raises(ApiException) as listing:
        other.list_workflows(ns, _preload_content=False)
    assert listing.value.status == 403
    assert error_body(listing.value)["code"] == 7
    assert error_body(listing.value)["message"].startswith(
        f'Permission denied, you are not allowed to list workflows in namespace "{ns}"')
    with pytest.raises(ApiException) as getting:
        get(other, ns, "x")
    assert getting.value.status == 403
    assert error_body(getting.value) == {"code": 7, "message": (
        'workflows.argoproj.io "x" is forbidden: User "system:serviceaccount:elsewhere:hpcflow" '
        f'cannot get resource "workflows" in API group "argoproj.io" in the namespace "{ns}"')}
    # As on a real server, version and userinfo make no Kubernetes call: any bearer passes.
    version = sdk(argo_server, "wrong-token")[1].get_version(_check_return_type=False)
    assert version["version"] == "v3.7.18"
    user = sdk(argo_server, argo_server.token)[1].get_user_info(_check_return_type=False)
    assert user["service_account_namespace"] == ns


def test_schema_rejects_invalid_workflows(argo_server, api) -> None:
    ns = argo_server.namespace
    bad = workflow(name("schema"), [container("main", "pass")])
    # Argo's Go server takes an integer here; its JSON Schema (IntOrString) wants a string.
    bad["spec"]["templates"][0]["activeDeadlineSeconds"] = 5
    bad["spec"]["templates"][0]["container"]["image"] = ["not", "a", "string"]
    # The SDK itself refuses the list, so this one goes past it.
    status, body = post_raw(argo_server, f"/api/v1/workflows/{ns}", {"workflow": bad})
    assert status == 400
    assert body["code"] == 3
    assert "spec.templates.0.activeDeadlineSeconds: 5 is not of type 'string'" in body["message"]
    assert "spec.templates.0.container.image" in body["message"]
    undefined = workflow(name("schema"), [container("main", "pass")], entrypoint="nope")
    with pytest.raises(ApiException) as err2:
        create(api, ns, undefined)
    assert error_body(err2.value) == {"code": 3,
                                      "message": "spec.entrypoint template 'nope' undefined"}


# -- failures, deadlines, terminate ---------------------------------------------------------------
def test_failing_container(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("fail")
    create(api, ns, workflow(wf_name, [container("main", "import sys; print('bad'); sys.exit(3)")]))
    wf = finished(api, ns, wf_name)
    node = wf["status"]["nodes"][wf_name]
    assert node["type"] == "Pod" and node["phase"] == "Failed"
    assert node["message"] == "main: Error (exit code 3)" == wf["status"]["message"]
    assert node["outputs"]["exitCode"] == "3"
    assert wf["status"]["phase"] == "Failed"


def _sleeper(code_extra: str = "") -> str:
    return f"import os, time; open('pid', 'w').write(str(os.getpid())); {code_extra}time.sleep(300)"


def _pid_gone(argo: StandinArgo, wf_name: str) -> bool:
    (record,) = [w for w in argo.workflows() if w["name"] == wf_name]
    return not _alive(int(_read(os.path.join(record["pods"][0]["root"], "pid"))))


def test_template_and_workflow_deadlines(argo_server, api) -> None:
    ns = argo_server.namespace
    tmpl_wf, spec_wf = name("tdeadline"), name("wdeadline")
    create(api, ns, workflow(tmpl_wf, [container("main", _sleeper(),
                                                 activeDeadlineSeconds="2")]))
    create(api, ns, workflow(spec_wf, [container("main", _sleeper())],
                             activeDeadlineSeconds=2))   # int64 here, IntOrString in templates
    wf = finished(api, ns, tmpl_wf)
    assert wf["status"]["nodes"][tmpl_wf]["message"] == (
        "Pod was active on the node longer than the specified deadline")
    assert wf["status"]["phase"] == "Failed"
    wf2 = finished(api, ns, spec_wf)
    assert wf2["status"]["nodes"][spec_wf]["message"] == "Step exceeded its deadline"
    assert wf2["status"]["phase"] == "Failed"
    wait_for(lambda: _pid_gone(argo_server, tmpl_wf) and _pid_gone(argo_server, spec_wf),
             60, "the deadline to kill the processes")


def test_terminate_kills_and_fails(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("term")
    code = _sleeper("print('started', flush=True); ")
    create(api, ns, workflow(wf_name, [container("main", code)]))
    wait_for(lambda: root_node(api, ns, wf_name).get("phase")
             == "Running", 90, "the pod to run")
    api.terminate_workflow(ns, wf_name, {}, _check_return_type=False, _preload_content=False)
    wf = finished(api, ns, wf_name)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert wf["status"]["nodes"][wf_name]["message"] == (
        "workflow shutdown with strategy:  Terminate")
    wait_for(lambda: _pid_gone(argo_server, wf_name), 60, "terminate to kill the process")


def test_delete_running_workflow_then_pod_gc_and_ttl(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("del")
    create(api, ns, workflow(wf_name, [container("main", _sleeper())]))
    wait_for(lambda: root_node(api, ns, wf_name).get("phase")
             == "Running", 90, "the pod to run")
    (record,) = [w for w in argo_server.workflows() if w["name"] == wf_name]
    pid = int(wait_for(lambda: _read(os.path.join(record["pods"][0]["root"], "pid")), 30, "pid"))
    api.delete_workflow(ns, wf_name, _check_return_type=False, _preload_content=False)
    with pytest.raises(ApiException) as err:
        get(api, ns, wf_name)
    assert err.value.status == 404
    wait_for(lambda: not _alive(pid), 60, "delete to kill the process")

    gc_name, ttl_name = name("gc"), name("ttl")
    create(api, ns, workflow(gc_name, [container("main", "print('gone soon')")],
                             podGC={"strategy": "OnPodCompletion"}))
    create(api, ns, workflow(ttl_name, [container("main", "pass")],
                             ttlStrategy={"secondsAfterCompletion": 1}))
    assert finished(api, ns, gc_name)["status"]["phase"] == "Succeeded"
    logs = api.workflow_logs(ns, gc_name, _preload_content=False)
    assert logs.data == b""
    wait_for(lambda: not [w for w in argo_server.workflows() if w["name"] == ttl_name], 60,
             "the TTL to delete the workflow")


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_missing_secret_keeps_the_pod_pending(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("nosecret")
    tmpl = container("main", "pass", activeDeadlineSeconds="3")
    tmpl["container"]["env"] = [{"name": "X", "valueFrom": {
        "secretKeyRef": {"name": "no-such-secret", "key": "k"}}}]
    create(api, ns, workflow(wf_name, [tmpl]))
    wait_for(lambda: root_node(api, ns, wf_name).get("message")
             == 'CreateContainerConfigError: secret "no-such-secret" not found', 60,
             "the pending reason")
    wf = finished(api, ns, wf_name)
    assert wf["status"]["nodes"][wf_name]["message"] == (
        "Pod was active on the node longer than the specified deadline")


# -- faults ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, phase, message", [
    ("OOMKilled", "Failed", "main: OOMKilled (exit code 137)"),
    ("Evicted", "Failed", "The node was low on resource: memory."),
    ("Preempted", "Error", "pod deleted"),
    ("ImagePullBackOff", "Failed", "Pod was active on the node longer than the specified deadline"),
])
def test_faults(argo_server, api, kind: str, phase: str, message: str) -> None:
    ns, wf_name = argo_server.namespace, name(kind.lower())
    image = f"registry.example/{wf_name}:1"
    argo_server.fault(image, kind)
    create(api, ns, workflow(wf_name, [container("main", _sleeper(), image=image,
                                                 activeDeadlineSeconds="4")]))
    if kind == "ImagePullBackOff":
        wait_for(lambda: root_node(api, ns, wf_name).get("message")
                 == f'ImagePullBackOff: Back-off pulling image "{image}"', 60, "the waiting reason")
        assert root_node(api, ns, wf_name)["phase"] == "Pending"
    wf = finished(api, ns, wf_name)
    node = wf["status"]["nodes"][wf_name]
    assert node["phase"] == phase
    assert node["message"].startswith(message)
    if kind == "OOMKilled":
        assert node["outputs"]["exitCode"] == "137"


# -- outage, call counting, TLS -------------------------------------------------------------------
def test_outage_refuses_connections_then_recovers(argo_server) -> None:
    api, info = sdk(argo_server, argo_server.token, retries=0)
    assert info.get_version(_check_return_type=False)["version"] == "v3.7.18"
    argo_server.down(4)

    def refused() -> bool:
        try:
            info.get_version(_check_return_type=False)
        except urllib3.exceptions.MaxRetryError as exc:
            return isinstance(exc.reason, urllib3.exceptions.NewConnectionError)
        return False

    wait_for(refused, 30, "connections to be refused")
    started = time.monotonic()
    wait_for(lambda: not refused(), 60, "the server to come back")
    assert time.monotonic() - started < 30
    api.list_workflows(argo_server.namespace, _preload_content=False)


def test_calls_are_counted_per_route(argo_server, api) -> None:
    ns, wf_name = argo_server.namespace, name("count")
    argo_server.reset_calls()
    create(api, ns, workflow(wf_name, [container("main", "pass")]))
    for _ in range(3):
        api.list_workflows(ns, list_options_label_selector="a=b", _preload_content=False)
    get(api, ns, wf_name)
    assert argo_server.calls() == {"POST /api/v1/workflows/{namespace}": 1,
                                   "GET /api/v1/workflows/{namespace}": 3,
                                   "GET /api/v1/workflows/{namespace}/{name}": 1}


def test_tls_with_a_ca_bundle(argo_server_tls) -> None:
    _, info = sdk(argo_server_tls, argo_server_tls.token, ca=str(argo_server_tls.ca))
    assert info.get_version(_check_return_type=False)["version"] == "v3.7.18"
    _, unverified = sdk(argo_server_tls, argo_server_tls.token, retries=0)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        unverified.get_version(_check_return_type=False)
    assert isinstance(err.value.reason, urllib3.exceptions.SSLError)


# -- the gateway's query semantics (pure) ---------------------------------------------------------
def test_label_selectors_and_field_masks() -> None:
    labels = {"app": "hpcflow", "step": "s1"}
    assert label_selector("app=hpcflow,step in (s1, s2),!gone,step")(labels)
    assert not label_selector("app!=hpcflow")(labels)
    assert not label_selector("step notin (s1)")(labels)
    obj = {"items": [{"metadata": {"name": "a", "uid": "u"},
                      "status": {"phase": "Running", "nodes": {"n": {"x": 1}}}}]}
    kept = FieldCleaner("items.metadata.name,items.status.phase").clean(json.loads(json.dumps(obj)))
    assert kept == {"items": [{"metadata": {"name": "a"}, "status": {"phase": "Running"}}]}
    dropped = FieldCleaner("-items.status.nodes").clean(json.loads(json.dumps(obj)))
    assert dropped == {"items": [{"metadata": {"name": "a", "uid": "u"},
                                  "status": {"phase": "Running"}}]}
