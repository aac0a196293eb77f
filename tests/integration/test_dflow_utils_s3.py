"""``hpcflow.utils`` (dflow's ``dflow.utils``) against S3, the real Ceph RGW: storage keys
(``upload_s3`` / ``download_s3`` / ``copy_s3``), ``download_artifact(skip_exists=True)``,
``copy_artifact`` and ``S3Artifact(key=...)`` as a step's input, with dflow's ``s3_config``."""

from pathlib import Path
from typing import List

from hpcflow import (
    S3Artifact,
    Step,
    Workflow,
    copy_artifact,
    download_artifact,
    path_list_of_artifact,
    s3_config,
    upload_artifact,
)
from hpcflow.python import OP, Artifact, PythonOPTemplate
from hpcflow.utils import copy_s3, download_s3, upload_s3
from tests.integration.conftest import s3_boto


def _use_s3(monkeypatch, s3_env: dict[str, str], bucket: str) -> None:
    host = s3_env["HPCFLOW_TEST_S3_ENDPOINT"].split("://", 1)[1]
    for key, value in dict(endpoint=host, secure=False, bucket_name=bucket, prefix="u/",
                           access_key=s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"],
                           secret_key=s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]).items():
        monkeypatch.setitem(s3_config, key, value)


@OP.function
def joined(files: Artifact(List[Path])) -> {"text": str}:
    return {"text": "".join(Path(f).read_text() for f in files)}


def test_dflow_utils_on_s3(hpc_home, monkeypatch, s3_env, bucket) -> None:
    _use_s3(monkeypatch, s3_env, bucket)
    Path("tree/sub").mkdir(parents=True)
    Path("tree/a.txt").write_text("A")
    Path("tree/sub/b.txt").write_text("B")
    key = upload_s3("tree", key="keys/tree")
    boto = s3_boto(s3_env)
    stored = sorted(o["Key"] for o in boto.list_objects_v2(Bucket=bucket)["Contents"])
    assert "u/keys/tree/a.txt" in stored and "u/keys/tree/sub/b.txt" in stored
    download_s3(key, path="back")
    assert Path("back/sub/b.txt").read_text() == "B"
    copy_s3(key, "keys/copy")
    download_s3("keys/copy", path="copied")
    assert Path("copied/a.txt").read_text() == "A"

    Path("x").write_text("x")
    Path("y").write_text("y")
    dst = upload_artifact(["x"], archive=None)
    copy_artifact(upload_artifact(["y"], archive=None), dst, sort=True)
    assert path_list_of_artifact(dst) == ["x", "y"]
    got = download_artifact(S3Artifact(key=dst.key), path="art")
    assert sorted(got) == ["art/x", "art/y"]
    Path("art/y").write_text("changed")
    before = Path("art/x").stat().st_mtime_ns
    download_artifact(dst, path="art", skip_exists=True)
    assert Path("art/y").read_text() == "y"
    assert Path("art/x").stat().st_mtime_ns == before  # same MD5: not fetched again

    wf = Workflow("s3-keys")
    wf.add(Step("join", PythonOPTemplate(joined),
                artifacts={"files": S3Artifact(key=dst.key)}))
    wf.submit()
    assert wf.wait(timeout=180) == "Succeeded"
    assert wf.query_step(name="join")[0].outputs.parameters["text"].value == "xy"
