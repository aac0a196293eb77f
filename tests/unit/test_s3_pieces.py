"""The parts of S3 storage that need no server: dflow's ``s3_config`` and the config file's
``[storage]`` choosing the client, retry decisions, digests, credentials handed to a job
through its environment (and taken out of the runner's), and the submit commands that pass
them on."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from hpcflow import settings
from hpcflow.config_file import ConfigError, parse_config
from hpcflow.connectors.executors.relay import with_environment
from hpcflow.connectors.schedulers.pbs import PBSScheduler
from hpcflow.connectors.schedulers.sge import SGEScheduler
from hpcflow.connectors.schedulers.slurm import SlurmScheduler
from hpcflow.connectors.storage import s3 as s3_module
from hpcflow.connectors.storage.s3 import S3StorageClient, endpoint_url, normal_prefix
from hpcflow.connectors.storage.s3_retry import (
    StorageUnavailableError,
    is_retryable,
    with_retries,
)
from hpcflow.connectors.storage.s3_transfer import composite_digest, verifiable
from hpcflow.errors import HpcflowError


def test_endpoints_and_prefixes_as_dflow_writes_them() -> None:
    assert endpoint_url("127.0.0.1:9000", secure=False) == "http://127.0.0.1:9000"
    assert endpoint_url("s3.example.org") == "https://s3.example.org"
    assert endpoint_url("https://s3.example.org/") == "https://s3.example.org"
    assert endpoint_url(None) is None
    assert normal_prefix("/runs/a/") == "runs/a/" and normal_prefix("") == ""
    with pytest.raises(HpcflowError, match="not allowed"):
        normal_prefix("runs/../etc")


def test_s3_config_keys_select_s3_storage(hpc_home: Path, monkeypatch) -> None:
    for key in list(settings.s3_config):
        monkeypatch.setitem(settings.s3_config, key, settings.s3_config[key])
    assert type(settings.storage_client()).__name__ == "LocalStorageClient"
    settings.s3_config.update(endpoint="minio:9000", secure=False, access_key="AK",
                              secret_key="SK-never-stored")
    with pytest.raises(HpcflowError, match=r"s3_config\['bucket_name'\] is not set"):
        settings.storage_client()
    settings.s3_config.update(bucket_name="artifacts", prefix="team/a")
    client = settings.storage_client()
    assert isinstance(client, S3StorageClient)
    assert (client.endpoint, client.bucket, client.prefix) == \
        ("http://minio:9000", "artifacts", "team/a/")
    spec = settings.storage_spec()
    assert "SK-never-stored" not in repr(spec) and spec["secret_ref"]
    stashed = hpc_home / "secrets" / f"{spec['secret_ref']}.json"
    assert "SK-never-stored" in stashed.read_text() and stashed.stat().st_mode & 0o077 == 0


def test_storage_table_of_the_config_file() -> None:
    table = parse_config({"storage": {"bucket": "b", "endpoint": "https://s3.site",
                                      "part_size_mb": 64, "prefix": "hpc"}}).storage
    assert table == {"kind": "s3", "bucket": "b", "endpoint": "https://s3.site",
                     "prefix": "hpc", "part_size": 64 << 20}
    assert parse_config({"storage": {"root": "/scratch/art"}}).storage == \
        {"kind": "local", "root": "/scratch/art"}
    assert parse_config({}).storage == {}
    for bad, message in [({"kind": "gcs"}, "storage.kind must be"),
                         ({"kind": "s3"}, "storage.bucket is needed"),
                         ({"bucket": "b", "access_key": "x"}, "both access_key and secret_key"),
                         ({"bucket": "b", "part_size_mb": 4}, "at least 5"),
                         ({"bucket": "b", "colour": "red"}, "unknown key storage.colour"),
                         ({"root": "/x", "bucket": "b"}, "storage.root is for kind")]:
        with pytest.raises(ConfigError, match=message):
            parse_config({"storage": bad})


def test_a_config_file_with_keys_must_be_private(tmp_path: Path, monkeypatch) -> None:
    from hpcflow.config_file import load_config

    path = tmp_path / "config.toml"
    path.write_text('[storage]\nbucket = "b"\naccess_key = "a"\nsecret_key = "s"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(tmp_path)
    path.chmod(0o600)
    assert load_config(tmp_path).storage["secret_key"] == "s"


def _client_error(code: str, status: int = 400) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def test_what_is_retried() -> None:
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    assert is_retryable(EndpointConnectionError(endpoint_url="http://x"))
    assert is_retryable(ReadTimeoutError(endpoint_url="http://x"))
    assert is_retryable(_client_error("SlowDown", 503))
    assert is_retryable(_client_error("InternalError", 500))
    assert is_retryable(ConnectionResetError())
    assert not is_retryable(_client_error("NoSuchBucket", 404))
    assert not is_retryable(_client_error("SignatureDoesNotMatch", 403))
    assert not is_retryable(NoCredentialsError())


def test_retries_back_off_until_the_deadline() -> None:
    from botocore.exceptions import EndpointConnectionError

    pauses: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 4:
            raise EndpointConnectionError(endpoint_url="http://x")
        return "done"

    assert with_retries(flaky, "upload k", 60, "b", None, sleep=pauses.append) == "done"
    assert len(pauses) == 3 and pauses[0] < pauses[1] < pauses[2]

    def down() -> None:
        raise EndpointConnectionError(endpoint_url="http://x")

    with pytest.raises(StorageUnavailableError, match="S3 could not upload k for 0 s"):
        with_retries(down, "upload k", 0, "b", "http://x", sleep=pauses.append)
    with pytest.raises(HpcflowError, match="does not exist: create it"):
        with_retries(lambda: (_ for _ in ()).throw(_client_error("NoSuchBucket", 404)),
                     "upload k", 60, "b", None, sleep=pauses.append)


def test_digests_and_when_an_etag_can_be_checked() -> None:
    parts = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert composite_digest(parts[:1]) == hashlib.md5(b"a").hexdigest()
    assert composite_digest(parts) == hashlib.md5(b"".join(parts)).hexdigest() + "-2"
    assert verifiable(composite_digest(parts), 2)
    assert not verifiable(composite_digest(parts), 3)
    assert verifiable(hashlib.md5(b"a").hexdigest(), 1)
    assert not verifiable(hashlib.md5(b"ab").hexdigest(), 2)  # a copy's or another tool's
    assert not verifiable("kms-opaque-etag", 1)


def test_credentials_reach_a_job_through_stdin_and_its_environment(tmp_path: Path) -> None:
    argv, stdin = with_environment(
        ["sh", "-c", 'echo "$HPCFLOW_S3_ACCESS_KEY/$HPCFLOW_S3_SECRET_KEY"'],
        {"HPCFLOW_S3_ACCESS_KEY": "AK", "HPCFLOW_S3_SECRET_KEY": "s e'c$ret"})
    assert "s e'c$ret" not in " ".join(argv)  # not on the command line (ps)
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "AK/s e'c$ret"
    with pytest.raises(HpcflowError, match="single line"):
        with_environment(["true"], {"HPCFLOW_S3_SECRET_KEY": "two\nlines"})
    assert SGEScheduler().submit_argv("/x/job.sh", ["A", "B"]) == \
        ["qsub", "-terse", "-v", "A,B", "/x/job.sh"]
    assert PBSScheduler().submit_argv("/x/job.sh", ["A"]) == ["qsub", "-v", "A", "/x/job.sh"]
    assert SlurmScheduler().submit_argv("/x/job.sh", ["A"]) == \
        ["sbatch", "--parsable", "/x/job.sh"]  # sbatch exports its environment


def test_the_runner_takes_the_keys_out_of_its_environment(monkeypatch) -> None:
    monkeypatch.setattr(s3_module, "_taken_from_env", None)
    monkeypatch.setenv("HPCFLOW_S3_ACCESS_KEY", "AK")
    monkeypatch.setenv("HPCFLOW_S3_SECRET_KEY", "SK")
    assert s3_module.credentials_from_env() == {"HPCFLOW_S3_ACCESS_KEY": "AK",
                                                "HPCFLOW_S3_SECRET_KEY": "SK"}
    assert "HPCFLOW_S3_SECRET_KEY" not in os.environ
    client = S3StorageClient("b", endpoint="http://127.0.0.1:1")
    assert client.credentials_env() == {"HPCFLOW_S3_ACCESS_KEY": "AK",
                                        "HPCFLOW_S3_SECRET_KEY": "SK"}
    monkeypatch.setattr(s3_module, "_taken_from_env", None)


def test_bad_client_settings_are_one_line_errors() -> None:
    with pytest.raises(HpcflowError, match="needs a bucket"):
        S3StorageClient("")
    with pytest.raises(HpcflowError, match="below S3's minimum"):
        S3StorageClient("b", part_size=1 << 20)
    with pytest.raises(HpcflowError, match="both access_key and secret_key"):
        S3StorageClient("b", access_key="a")


class _LyingS3:
    """A client whose GETs return other bytes than the object's ETag was made from."""

    def get_object(self, **kwargs):
        import io

        return {"Body": io.BytesIO(b"x" * 10)}


def test_a_download_that_does_not_match_its_digest_leaves_nothing(tmp_path: Path) -> None:
    from hpcflow.connectors.storage.s3_transfer import IntegrityError, Transfer

    transfer = Transfer(_LyingS3(), "b", 5 << 20, 2, lambda call, what: call())
    head = {"ContentLength": 10, "ETag": f'"{hashlib.md5(b"y" * 10).hexdigest()}"',
            "Metadata": {"hpcflow-part-size": str(5 << 20)}}
    with pytest.raises(IntegrityError, match="do not match its checksums"):
        transfer.download("k", str(tmp_path / "out.bin"), head)
    assert list(tmp_path.iterdir()) == []
    # an ETag of another form (another tool's multipart, KMS) is not held against the bytes
    transfer.download("k", str(tmp_path / "out.bin"), {**head, "ETag": '"abc-7"'})
    assert (tmp_path / "out.bin").read_bytes() == b"x" * 10


def test_an_object_store_down_while_relaying_is_an_unreachable_machine(
        tmp_path: Path, monkeypatch) -> None:
    """The daemon relays on its loop: S3 down makes put_inputs give up after the relay's
    short deadline with a TransportError (retried later), not a step failure."""
    import socket

    from hpcflow.connectors.executors import relay
    from hpcflow.connectors.executors.base import JobSpec
    from hpcflow.connectors.transports.base import TransportError
    from hpcflow.connectors.transports.local import LocalTransport

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connection is refused
    monkeypatch.setattr(relay, "RELAY_RETRY_SECONDS", 1.0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    spec = S3StorageClient("b", endpoint=f"http://127.0.0.1:{port}").to_spec()
    job = JobSpec("hpcflow-w-1-0", str(tmp_path / "step"), {"storage": spec, "inputs": {
        "artifacts": {"x": {"parts": [{"key": "wf/a.tgz", "archive": "tar"}], "items": "a"}}}})
    with pytest.raises(TransportError, match=r"S3 could not look up wf/a\.tgz"):
        relay.put_inputs(LocalTransport(), str(tmp_path / "relay"), job)


class _ReplacedS3:
    """A client whose object was replaced after its HEAD: every If-Match GET is refused."""

    def get_object(self, **kwargs):
        raise _client_error("PreconditionFailed", 412)


def test_an_object_replaced_during_a_download_is_named(tmp_path: Path) -> None:
    from hpcflow.connectors.storage.s3_transfer import Transfer

    transfer = Transfer(_ReplacedS3(), "b", 5 << 20, 2,
                        lambda call, what: with_retries(call, what, 5, "b", None))
    head = {"ContentLength": 10, "ETag": '"abc-7"', "Metadata": {}}
    with pytest.raises(HpcflowError, match="k changed while it was being downloaded"):
        transfer.download("k", str(tmp_path / "out.bin"), head)
