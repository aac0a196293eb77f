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
def ssh_env() -> dict[str, str]:
    """``HPCFLOW_TEST_SSH_{HOST,PORT,USER,KEY,KNOWN_HOSTS}`` of the test sshd (values as strings).

    ssh sessions there have ``SLURM_CONF`` set, so Slurm commands work remotely.
    """
    return _require(SSH_VARS, "SSH")


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
