"""``[argo.NAME]``: checked when the config file is read, the token kept out of it."""

from pathlib import Path

import pytest

from hpcflow.config_file import ConfigError, parse_config
from hpcflow.connectors.executors.argo_config import ArgoCluster, read_token

BASE = {"server": "https://argo.example.org:2746", "namespace": "hpcflow",
        "token_file": "/nonexistent/token"}


def cluster(**table) -> ArgoCluster:
    config = parse_config({"argo": {"k8s": {**BASE, **table}}})
    found = config.sections["argo"]["k8s"]
    assert isinstance(found, ArgoCluster)
    return found


def test_a_cluster_is_an_executor_of_its_name_with_its_poll_bounds():
    config = parse_config({"argo": {"k8s": {**BASE, "min_poll_interval": 1,
                                            "max_poll_interval": 9}}})
    assert config.poll_bounds("k8s").min == 1 and config.poll_bounds("k8s").max == 9
    assert cluster().verify_tls and cluster(verify_tls=False).verify_tls is False


@pytest.mark.parametrize("table, words", [
    ({"token": "abc"}, "keep the token out of the config file"),
    ({"token_secret": "ref"}, "needs one of token_file"),
    ({"namespace": "Not_A_Namespace"}, "must be a Kubernetes namespace name"),
    ({"server": "argo.example.org"}, "must be an http(s) URL"),
    ({"image_pull_policy": "Sometimes"}, "must be one of Always, IfNotPresent, Never"),
    ({"cpu": True}, "argo.k8s.cpu must be a quantity"),
    ({"node_selector": ["pool"]}, "argo.k8s.node_selector must be a table"),
    ({"tolerations": {"key": "gpu"}}, "argo.k8s.tolerations must be a list of tables"),
    ({"imagez": True}, "imagez"),
])
def test_a_wrong_table_is_one_line_naming_the_key(table, words):
    with pytest.raises(ConfigError, match=None) as caught:
        cluster(**table)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_cluster_may_not_take_the_name_of_a_machine():
    with pytest.raises(ConfigError, match="argo name 'hpc'"):
        parse_config({"machines": {"hpc": {"scheduler": "slurm"}}, "argo": {"hpc": BASE}})


def test_the_token_file_must_be_private(tmp_path: Path):
    token = tmp_path / "argo.token"
    token.write_text("s3cr3t-token\n")
    token.chmod(0o644)
    found = cluster(token_file=str(token))
    with pytest.raises(ConfigError, match="can be read by others: chmod 600"):
        read_token(found, tmp_path)
    token.chmod(0o600)
    assert read_token(found, tmp_path) == "s3cr3t-token"
    token.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        read_token(found, tmp_path)


def test_the_token_may_come_from_the_homes_secrets(tmp_path: Path):
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "argo-k8s.token").write_text("from-secrets\n")
    (secrets / "argo-k8s.token").chmod(0o600)
    table = {k: v for k, v in BASE.items() if k != "token_file"}
    found = parse_config({"argo": {"k8s": {**table, "token_secret": "argo-k8s.token"}}}
                         ).sections["argo"]["k8s"]
    assert read_token(found, tmp_path) == "from-secrets"
    with pytest.raises(ConfigError, match="must be a file name in"):
        parse_config({"argo": {"k8s": {**table, "token_secret": "../elsewhere"}}})


def test_argo_executor_on_a_template_or_a_workflow():
    from hpcflow import ArgoExecutor, Step, Workflow
    from hpcflow.errors import WorkflowDefinitionError
    from hpcflow.python import OP, PythonOPTemplate
    from hpcflow.spec import build_spec

    @OP.function
    def one(x: int) -> {"y": int}:
        return {"y": x}

    wf = Workflow("argo-defaults", executor=ArgoExecutor(cluster="wide", memory="1Gi"))
    wf.add(Step("plain", PythonOPTemplate(one, image="py:3"), parameters={"x": 1}))
    wf.add(Step("templ", PythonOPTemplate(one, image="py:3",
                                          executor=ArgoExecutor(cluster="k8s", gpus=2)),
                parameters={"x": 1}))
    spec, _ = build_spec(wf.name, wf.entry, default_executor=wf.executor)
    placed = {s["name"]: (s["executor"]["cluster"], s["executor"]["resources"])
              for group in spec["templates"][spec["entrypoint"]]["steps"] for s in group}
    assert placed == {"plain": ("wide", {"memory": "1Gi"}), "templ": ("k8s", {"gpus": 2})}
    with pytest.raises(WorkflowDefinitionError, match="image_pull_policy must be one of"):
        ArgoExecutor(cluster="k8s", image_pull_policy="Sometimes")
    with pytest.raises(WorkflowDefinitionError, match="group_size must be a positive integer"):
        ArgoExecutor(cluster="k8s", group_size=0)


def test_without_the_sdk_a_cluster_is_refused_in_one_line(monkeypatch):
    import sys

    from hpcflow.connectors.executors.argo_client import ArgoClient
    from hpcflow.errors import HpcflowError

    monkeypatch.setitem(sys.modules, "argo_workflows", None)  # as if not installed
    with pytest.raises(HpcflowError, match=r"pip install 'hpcflow\[argo\]'"):
        ArgoClient(cluster(), "token")
