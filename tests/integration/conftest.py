"""Fixtures for integration tests against the real services of ``tests/services/up.sh``.

``bash tests/run.sh`` starts a one-node Slurm cluster and an sshd on 127.0.0.1 before pytest and
exports their coordinates (from ``STATE_DIR/services.env``). To run these tests by hand::

    sudo bash tests/services/up.sh                       # STATE_DIR: /tmp/hpcflow-services/state
    source /tmp/hpcflow-services/state/services.env
    .venv/bin/python -m pytest tests/integration

Missing variables make the fixtures FAIL (not skip): CI must never pass by silently skipping.
"""

from __future__ import annotations

import os
import uuid

import pytest

SLURM_VARS = ("SLURM_CONF", "HPCFLOW_TEST_SLURM_JOBCOMP")
SGE_VARS = ("SGE_ROOT", "SGE_CELL", "HPCFLOW_TEST_SGE")
S3_VARS = ("HPCFLOW_TEST_S3_ENDPOINT", "HPCFLOW_TEST_S3_ACCESS_KEY", "HPCFLOW_TEST_S3_SECRET_KEY")
SSH_VARS = (
    "HPCFLOW_TEST_SSH_HOST",
    "HPCFLOW_TEST_SSH_PORT",
    "HPCFLOW_TEST_SSH_USER",
    "HPCFLOW_TEST_SSH_KEY",
    "HPCFLOW_TEST_SSH_KNOWN_HOSTS",
)

SSH_TOTP_VARS = (
    "HPCFLOW_TEST_SSH_TOTP_HOST",
    "HPCFLOW_TEST_SSH_TOTP_PORT",
    "HPCFLOW_TEST_SSH_TOTP_USER",
    "HPCFLOW_TEST_SSH_TOTP_KEY",
    "HPCFLOW_TEST_SSH_TOTP_KNOWN_HOSTS",
    "HPCFLOW_TEST_SSH_TOTP_SECRET",
)


def _require(names: tuple[str, ...], service: str) -> dict[str, str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(
            f"{service} integration tests need {', '.join(missing)} in the environment. "
            "Start the services and load their coordinates first:\n"
            "    bash tests/services/up.sh [STATE_DIR]   # as root\n"
            "    source STATE_DIR/services.env          # default /tmp/hpcflow-services/state\n"
            "(bash tests/run.sh does both.)",
            pytrace=False,
        )
    return {n: os.environ[n] for n in names}


@pytest.fixture(scope="session")
def slurm_env() -> dict[str, str]:
    """``SLURM_CONF`` and ``HPCFLOW_TEST_SLURM_JOBCOMP`` (jobcomp/filetxt file) of the test cluster.

    The cluster has one node ``localhost`` and one partition ``debug``.
    """
    return _require(SLURM_VARS, "Slurm")


@pytest.fixture(scope="session")
def slurm_accounting_env() -> dict[str, str]:
    """The test cluster's ``SLURM_CONF`` with accounting: slurmdbd + MariaDB (plain ``sacct``
    works), ``MinJobAge=10`` (a finished job leaves ``squeue`` about 10 s after it ends)."""
    return _require(("SLURM_CONF", "HPCFLOW_TEST_SLURM_SACCT"), "Slurm accounting")


@pytest.fixture(scope="session")
def ssh_env() -> dict[str, str]:
    """``HPCFLOW_TEST_SSH_{HOST,PORT,USER,KEY,KNOWN_HOSTS}`` of the test sshd (values as strings).

    ssh sessions there have ``SLURM_CONF`` set, so Slurm commands work remotely.
    """
    return _require(SSH_VARS, "SSH")


@pytest.fixture(scope="session")
def totp_env() -> dict[str, str]:
    """``HPCFLOW_TEST_SSH_TOTP_{HOST,PORT,USER,KEY,KNOWN_HOSTS,SECRET}`` of the sshd that asks
    for a key and then a TOTP code (``SECRET``: the base32 secret's file, for oathtool).

    ssh sessions there have ``SLURM_CONF`` set, as on the key-only sshd.
    """
    return _require(SSH_TOTP_VARS, "SSH with TOTP")


@pytest.fixture(scope="session")
def sge_env() -> dict[str, str]:
    """``SGE_ROOT``, ``SGE_CELL`` and ``HPCFLOW_TEST_SGE=1`` of the test Grid Engine.

    One node ``localhost`` and one queue ``all.q`` (4 slots) with a parallel environment
    ``smp``; accounting (``qacct``) is flushed every second.
    """
    return _require(SGE_VARS, "Grid Engine")


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    """``HPCFLOW_TEST_S3_{ENDPOINT,ACCESS_KEY,SECRET_KEY}`` of the test's Ceph RADOS Gateway."""
    return _require(S3_VARS, "S3")


def s3_boto(s3_env: dict[str, str]):
    """A plain boto3 client of the test RGW (to look at a bucket behind hpcflow's back)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_env["HPCFLOW_TEST_S3_ENDPOINT"],
                        aws_access_key_id=s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"],
                        aws_secret_access_key=s3_env["HPCFLOW_TEST_S3_SECRET_KEY"],
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(s3_env: dict[str, str]):
    """A new bucket for the test, emptied and removed afterwards (RGW keeps data in RAM)."""
    name = f"hpcflow-test-{uuid.uuid4().hex[:12]}"
    boto = s3_boto(s3_env)
    boto.create_bucket(Bucket=name)
    yield name
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            boto.delete_object(Bucket=name, Key=obj["Key"])
    boto.delete_bucket(Bucket=name)


ARGO_NAMESPACE = "hpcflow"


def _argo_standin(s3_env: dict[str, str], workdir, tls: bool):
    """Start a stand-in Argo Server (tests/services/argo_standin: NOT Argo) with its own bucket
    as the default artifact repository; yield it, then stop it and remove the bucket."""
    from tests.services.argo_standin.launcher import StandinArgo, s3_repository

    bucket = f"hpcflow-argo-{uuid.uuid4().hex[:10]}"
    boto = s3_boto(s3_env)
    boto.create_bucket(Bucket=bucket)
    keys = {"accesskey": s3_env["HPCFLOW_TEST_S3_ACCESS_KEY"],
            "secretkey": s3_env["HPCFLOW_TEST_S3_SECRET_KEY"]}
    server = StandinArgo(
        workdir,
        tokens={"hpcflow-test-token": [ARGO_NAMESPACE], "other-namespace-token": ["elsewhere"]},
        secrets={ARGO_NAMESPACE: {"argo-artifacts": keys,
                                  "app-secret": {"password": "s3cret-value"}}},
        artifact_repository=s3_repository(s3_env["HPCFLOW_TEST_S3_ENDPOINT"], bucket),
        tls=tls, token="hpcflow-test-token", namespace=ARGO_NAMESPACE, bucket=bucket)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        for page in boto.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                boto.delete_object(Bucket=bucket, Key=obj["Key"])
        boto.delete_bucket(Bucket=bucket)


@pytest.fixture(scope="session")
def argo_server(s3_env: dict[str, str], tmp_path_factory):
    """A stand-in Argo Server over plain HTTP (``tests/services/argo_standin``; not Argo).

    ``.url``, ``.token`` (allowed in ``.namespace`` = ``hpcflow`` only; the token
    ``other-namespace-token`` may use ``elsewhere`` only), ``.bucket`` (the default artifact
    repository on the real RGW; pods reach it through the Secret ``argo-artifacts``, keys
    ``accesskey``/``secretkey``; the Secret ``app-secret`` has ``password``), and the control
    helpers ``.fault(image, kind)``, ``.down(seconds)``, ``.calls()``, ``.reset_calls()``,
    ``.workflows()``. Shared by the session: use unique workflow names and images.
    """
    yield from _argo_standin(s3_env, tmp_path_factory.mktemp("argo-standin"), tls=False)


@pytest.fixture(scope="session")
def argo_server_tls(s3_env: dict[str, str], tmp_path_factory):
    """As ``argo_server``, over HTTPS with a self-signed certificate; ``.ca`` is its CA bundle."""
    yield from _argo_standin(s3_env, tmp_path_factory.mktemp("argo-standin-tls"), tls=True)
