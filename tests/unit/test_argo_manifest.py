"""Every Argo Workflow hpcflow generates is valid against Argo's own JSON Schema (v3.7.18,
vendored with the stand-in in tests/services/argo_standin), and says what the step asked."""

import pytest

from hpcflow.connectors.executors.argo_manifest import (
    S3Location,
    argo_name,
    exchange_prefix,
    workflow_manifest,
)
from hpcflow.connectors.executors.base import JobSpec
from tests.services.argo_standin.schema import schema_errors

S3 = S3Location(bucket="b", endpoint="rgw:7480", insecure=True, secret="hpcflow-s3",
                prefix="team/")
PODS = {"cpu": 2, "memory": "4Gi", "gpus": 1, "limits": {"memory": "8Gi"},
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "service_account": "hpcflow-workflow", "image_pull_policy": "IfNotPresent",
        "envs": {"OMP_NUM_THREADS": 4}}


def job(step_id: int, timeout: float | None = None) -> JobSpec:
    return JobSpec(f"hpcflow-Wf_1-{step_id}-0", f"/hpcflow/Wf_1/fit-{step_id}",
                   {"workflow_id": "Wf_1", "template": {"image": "python:3.11"},
                    "storage": {"kind": "s3"}, "artifact_prefix": f"wf/Wf_1/{step_id}-0"},
                   timeout=timeout)


def manifest(members: list[JobSpec]) -> dict:
    return workflow_manifest(argo_name(members[0].name), members, PODS, "python3", S3,
                             "argo/bundles/hpcflow-x.zip", {"hpcflow.io/home": "abc"}, 3600)


def test_a_step_workflow_is_valid_and_carries_the_pod_settings():
    wf = manifest([job(7, timeout=90)])
    assert schema_errors(wf) == []
    [template] = wf["spec"]["templates"]
    container = template["container"]
    assert container["image"] == "python:3.11"
    assert container["workingDir"] == "/hpcflow/Wf_1/fit-7"
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}}
    assert container["env"] == [{"name": "OMP_NUM_THREADS", "value": "4"}]
    assert template["activeDeadlineSeconds"] == "90"
    assert template["nodeSelector"] == {"pool": "gpu"}
    assert wf["spec"]["serviceAccountName"] == "hpcflow-workflow"
    # the step's files come in and go out through the bucket, keys under [storage]'s prefix
    job_in = template["inputs"]["artifacts"][0]["s3"]
    assert job_in["key"] == "team/argo/Wf_1/fit-7/job.tgz"
    assert job_in["accessKeySecret"] == {"name": "hpcflow-s3", "key": "accesskey"}
    outputs = {a["name"]: a for a in template["outputs"]["artifacts"]}
    assert outputs["result"]["s3"]["key"] == "team/argo/Wf_1/fit-7/result.json"
    assert outputs["result"]["archive"] == {"none": {}}
    assert outputs["relay"]["path"] == "/hpcflow/Wf_1/fit-7/.relay/wf/Wf_1/7-0"


def test_a_pack_is_one_workflow_with_a_pod_per_member():
    wf = manifest([job(1), job(2), job(3)])
    assert schema_errors(wf) == []
    steps = wf["spec"]["templates"][0]["steps"]
    assert [s["name"] for s in steps[0]] == ["s-1-0", "s-2-0", "s-3-0"]  # one parallel group
    assert len(wf["spec"]["templates"]) == 4


def test_names_are_kubernetes_names_and_distinct():
    names = {argo_name(n) for n in ("hpcflow-A_b-1-0", "hpcflow-a-b-1-0", "hpcflow-a_b-1-0")}
    assert len(names) == 3
    assert all(len(n) <= 63 and n == n.lower() for n in names)
    assert argo_name("x" * 80) != argo_name("x" * 81)
    assert exchange_prefix("/hpcflow/wf-1/fit-3") == "argo/wf-1/fit-3"


@pytest.mark.parametrize("broken", [{"cpu": 2}, {"activeDeadlineSeconds": 5}])
def test_the_schema_check_has_teeth(broken):
    """A template with an integer where Argo's schema wants a string is refused: the test
    above would catch hpcflow sending one."""
    wf = manifest([job(7)])
    template = wf["spec"]["templates"][0]
    if "cpu" in broken:
        template["container"]["resources"]["requests"]["cpu"] = 2
    else:
        template["activeDeadlineSeconds"] = 5
    assert schema_errors(wf)
