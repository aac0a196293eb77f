"""Upload and download throughput of hpcflow's ``S3StorageClient`` against plain boto3.

One file of random bytes (``os.urandom``, 1 GiB by default) is uploaded and downloaded again,
in the same run and against the same S3 server, by two tools:

- **boto3**: ``client.upload_file`` / ``client.download_file`` with the default
  ``TransferConfig`` (8 MiB parts, 10 threads) and the default botocore ``Config`` except
  path-style addressing (``Config(s3={"addressing_style": "path"})``);
- **hpcflow**: ``S3StorageClient.upload`` / ``.download`` (by default its own defaults:
  16 MiB parts, 8 threads, a CRC32 checksum on every part, every downloaded range checked
  against the part CRC32s recorded at upload, content addressing on).

Each tool downloads the object it uploaded itself. Within a round the order alternates
(boto3 first in odd rounds, hpcflow first in even ones) to spread the noise of a small
machine. Outside the timed regions: both clients are made and connected before the first
round, ``os.sync()`` runs before each timed call, every download is checked (its SHA-256
must be the source file's), the downloaded file is removed, and every object in the bucket
is deleted after each tool's download, followed by a pause (``--settle``) in which the
RADOS Gateway's garbage collector frees the deleted data (the test gateway keeps objects in
RAM and collects every 5 s).

hpcflow's client does content addressing: uploading content it has already stored becomes a
server-side copy. So that each measured upload is a real transfer, the bucket is empty
(hpcflow's index objects under ``.hpcflow/`` included) before every round, a few bytes of
the file are replaced with fresh random bytes between rounds, and the uploaded object's ETag
must be the multipart form ``...-N`` with N the expected number of parts. Once per round,
after its measured transfers, hpcflow uploads the same content again under another key: that
re-upload of stored content (a hash of the file plus a server-side copy) is reported on its
own line and is not part of the throughput ratios.

Reported per round and as the median over rounds: seconds and MB/s (10^6 bytes per second)
for each tool and direction, the CPU seconds this process (all threads) and the gateway's
processes (radosgw and ceph-osd, read from ``/proc``; ``--server-pidfile``) used meanwhile,
and the ratio hpcflow / boto3 of the median throughputs. The target is
hpcflow at >= 90% of boto3 in each direction; whether it is met is printed, and the exit
status is 0 either way (a measurement, not a test). A fresh bucket is made for each run and
deleted at the end, also on an error or Ctrl-C.

Usage (the gateway's address and keys from the environment, as the integration tests get
them, or from ``--endpoint/--access-key/--secret-key``)::

    source /tmp/hpcflow-services/state/services.env
    .venv/bin/python benchmarks/s3_throughput.py [--size-mb 1024] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
MB = 1_000_000
TARGET = 0.90
TOOLS = ("boto3", "hpcflow")
DIRECTIONS = ("upload", "download")
RGW_RUN = "/tmp/hpcflow-services/state/rgw/run"


@dataclass
class Timing:
    """One timed transfer."""

    tool: str
    direction: str
    seconds: float
    mb_per_s: float
    cpu_seconds: float
    server_cpu_seconds: float | None
    etag: str


@dataclass
class Round:
    number: int
    order: list[str]
    timings: list[Timing] = field(default_factory=list)
    reupload: dict[str, Any] = field(default_factory=dict)

    def get(self, tool: str, direction: str) -> Timing:
        return next(t for t in self.timings if t.tool == tool and t.direction == direction)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = min(left, 64 * MIB)
            f.write(os.urandom(chunk))
            left -= chunk


def refresh_content(path: Path, size: int) -> None:
    """Replace a few bytes (the start, the middle, the end) with fresh random bytes: new
    content, and a new fingerprint for hpcflow's content addressing (its first part)."""
    with open(path, "r+b") as f:
        for offset in (0, size // 2, max(0, size - 4096)):
            f.seek(offset)
            f.write(os.urandom(min(4096, size - offset)))


def all_keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object (hpcflow's ``.hpcflow/`` index too) and abort unfinished
    multipart uploads. Returns the number of objects deleted."""
    keys = all_keys(s3, bucket)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start:start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for up in uploads:
        s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    return len(keys)


SERVER_PIDS: list[int] = []
TICK = os.sysconf("SC_CLK_TCK")


def server_pids(pidfiles: list[str]) -> list[int]:
    """The gateway's processes (radosgw, ceph-osd) whose CPU time is read, when known."""
    pids = []
    for name in pidfiles:
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(name).read_text().split()[0])
            if Path(f"/proc/{pid}/stat").exists():
                pids.append(pid)
    return pids


def server_cpu() -> float | None:
    """CPU seconds (user + system) used so far by the gateway's processes."""
    if not SERVER_PIDS:
        return None
    total = 0
    for pid in SERVER_PIDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def timed(call: Callable[[], Any]) -> tuple[float, float, float | None]:
    """Wall seconds, this process's CPU seconds (all threads, user + system) and the
    gateway's CPU seconds (None when its processes are not known)."""
    os.sync()  # earlier downloads' dirty pages are not written back inside a timed region
    server, cpu, started = server_cpu(), time.process_time(), time.perf_counter()
    call()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = server_cpu()
    return wall, cpu, (after - server) if after is not None and server is not None else None


def expected_etag_suffix(size: int, part_size: int) -> str:
    parts = max(1, math.ceil(size / part_size))
    return f"-{parts}" if size > part_size else ""


def run_tool(tool: str, number: int, ctx: dict[str, Any]) -> tuple[list[Timing], dict]:
    """Upload, download and check one tool's copy; delete everything afterwards."""
    s3, hp, bucket = ctx["s3"], ctx["hp"], ctx["bucket"]
    src: Path = ctx["src"]
    size: int = ctx["size"]
    key = f"bench/{tool}-round{number}.bin"
    dst = ctx["workdir"] / f"down-{tool}-{number}.bin"
    if tool == "boto3":
        up = timed(lambda: s3.upload_file(str(src), bucket, key))
        etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
        down = timed(lambda: s3.download_file(bucket, key, str(dst)))
        suffix = expected_etag_suffix(size, ctx["boto3_chunk"])
    else:
        stale = [k for k in all_keys(s3, bucket) if k.startswith(".hpcflow/")]
        if stale:
            raise SystemExit(f"round {number}: index objects left in the bucket: {stale}")
        up = timed(lambda: hp.upload(key, str(src)))
        etag = hp.get_md5(key)
        down = timed(lambda: hp.download(key, str(dst)))
        suffix = expected_etag_suffix(size, hp.part_size)
    if (suffix and not etag.endswith(suffix)) or (not suffix and "-" in etag):
        raise SystemExit(f"round {number}: {tool}'s object has ETag {etag}, expected the "
                         f"form ...{suffix or ' (one part)'}: not a plain upload of this file")
    got = sha256_of(dst)
    if got != ctx["sha256"]:
        raise SystemExit(f"round {number}: {tool}'s download differs from the source "
                         f"(sha256 {got} != {ctx['sha256']})")
    dst.unlink()
    reupload: dict[str, Any] = {}
    if tool == "hpcflow":
        again = f"bench/hpcflow-round{number}-again.bin"
        seconds, cpu, _ = timed(lambda: hp.upload(again, str(src)))
        reupload = {"seconds": seconds, "mb_per_s": size / seconds / MB, "cpu_seconds": cpu,
                    "etag": hp.get_md5(again), "etag_of_original": etag}
    timings = [Timing(tool, "upload", up[0], size / up[0] / MB, up[1], up[2], etag),
               Timing(tool, "download", down[0], size / down[0] / MB, down[1], down[2], etag)]
    empty_bucket(s3, bucket)
    time.sleep(ctx["settle"])
    return timings, reupload


def median_of(rounds: list[Round], tool: str, direction: str) -> dict[str, float | None]:
    found = [r.get(tool, direction) for r in rounds]
    server = [t.server_cpu_seconds for t in found if t.server_cpu_seconds is not None]
    return {"seconds": statistics.median(t.seconds for t in found),
            "mb_per_s": statistics.median(t.mb_per_s for t in found),
            "cpu_seconds": statistics.median(t.cpu_seconds for t in found),
            "server_cpu_seconds": statistics.median(server) if server else None}


def row(label: str, tool: str, up: dict[str, Any], down: dict[str, Any]) -> str:
    def srv(value: float | None) -> str:
        return f"{value:>7.2f}" if value is not None else f"{'-':>7}"

    return (f"{label:<8}{tool:<9}{up['seconds']:>10.2f}{up['mb_per_s']:>8.1f}"
            f"{up['cpu_seconds']:>7.2f}{srv(up['server_cpu_seconds'])}"
            f"{down['seconds']:>12.2f}{down['mb_per_s']:>8.1f}"
            f"{down['cpu_seconds']:>7.2f}{srv(down['server_cpu_seconds'])}")


def report(rounds: list[Round], size: int) -> dict[str, Any]:
    print()
    print(f"{size / MIB:.0f} MiB file; MB/s = 10^6 bytes per second; cpu = CPU seconds of "
          "this process (all threads), srv = of the gateway (radosgw + ceph-osd)")
    print(f"{'round':<8}{'tool':<9}{'upload s':>10}{'MB/s':>8}{'cpu':>7}{'srv':>7}"
          f"{'download s':>12}{'MB/s':>8}{'cpu':>7}{'srv':>7}")
    for r in rounds:
        for tool in r.order:
            u, d = asdict(r.get(tool, "upload")), asdict(r.get(tool, "download"))
            print(row(str(r.number), tool, u, d))
    medians: dict[str, Any] = {}
    for tool in TOOLS:
        medians[tool] = {d: median_of(rounds, tool, d) for d in DIRECTIONS}
        print(row("median", tool, medians[tool]["upload"], medians[tool]["download"]))
    print()
    ratios: dict[str, Any] = {}
    for direction in DIRECTIONS:
        per_round = [r.get("hpcflow", direction).mb_per_s / r.get("boto3", direction).mb_per_s
                     for r in rounds]
        ratio = medians["hpcflow"][direction]["mb_per_s"] / medians["boto3"][direction][
            "mb_per_s"]
        met = ratio >= TARGET
        ratios[direction] = {"median_ratio": ratio, "per_round": per_round, "target": TARGET,
                             "met": met}
        rounds_text = ", ".join(f"{x:.2f}" for x in per_round)
        print(f"{direction:<9} hpcflow / boto3 throughput: {ratio:.2f} (median; per round "
              f"{rounds_text}); target >= {TARGET:.2f}: {'met' if met else 'NOT met'}")
    again = [r.reupload for r in rounds if r.reupload]
    if again:
        secs = statistics.median(a["seconds"] for a in again)
        print(f"re-upload of stored content (content addressing, not in the ratios): median "
              f"{secs:.2f} s ({size / secs / MB:.0f} MB/s effective; per round "
              + ", ".join(f"{a['seconds']:.2f}" for a in again) + " s)")
    return {"medians": medians, "ratios": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=os.environ.get("HPCFLOW_TEST_S3_ENDPOINT"))
    parser.add_argument("--access-key", default=os.environ.get("HPCFLOW_TEST_S3_ACCESS_KEY"))
    parser.add_argument("--secret-key", default=os.environ.get("HPCFLOW_TEST_S3_SECRET_KEY"))
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part-size-mb", type=int, default=16,
                        help="hpcflow's part_size in MiB (its default: 16)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="hpcflow's max_concurrency (its default: 8)")
    parser.add_argument("--settle", type=float, default=6.0,
                        help="seconds to wait after deleting objects (the gateway's GC)")
    parser.add_argument("--tmpdir", default=None, help="where the files go (default: $TMPDIR)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--server-pidfile", action="append", default=None,
                        help="pid file of a server process whose CPU time is reported "
                             "(repeatable; default: the test gateway's radosgw and ceph-osd)")
    args = parser.parse_args()
    missing = [name for name, value in (("HPCFLOW_TEST_S3_ENDPOINT/--endpoint", args.endpoint),
                                        ("HPCFLOW_TEST_S3_ACCESS_KEY/--access-key",
                                         args.access_key),
                                        ("HPCFLOW_TEST_S3_SECRET_KEY/--secret-key",
                                         args.secret_key)) if not value]
    if missing:
        print(f"s3_throughput: no {', '.join(missing)}: source "
              "/tmp/hpcflow-services/state/services.env or pass the options", file=sys.stderr)
        return 2
    if args.size_mb < 1 or args.rounds < 1:
        print("s3_throughput: --size-mb and --rounds must be at least 1", file=sys.stderr)
        return 2

    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    from hpcflow.connectors.storage.s3 import S3StorageClient

    SERVER_PIDS[:] = server_pids(args.server_pidfile or [
        f"{RGW_RUN}/client.rgw.a.pid", f"{RGW_RUN}/osd.0.pid"])
    size = args.size_mb * MIB
    bucket = f"hpcflow-bench-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=args.endpoint, aws_access_key_id=args.access_key,
                      aws_secret_access_key=args.secret_key, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    hp = S3StorageClient(bucket, endpoint=args.endpoint, access_key=args.access_key,
                         secret_key=args.secret_key, part_size=args.part_size_mb * MIB,
                         max_concurrency=args.concurrency)
    workdir = Path(tempfile.mkdtemp(prefix="hpcflow-s3-bench-", dir=args.tmpdir))
    rounds: list[Round] = []
    created = False
    try:
        try:
            s3.create_bucket(Bucket=bucket)
        except Exception as exc:
            print(f"s3_throughput: cannot create a bucket at {args.endpoint}: "
                  f"{type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            return 2
        created = True
        s3.head_bucket(Bucket=bucket)  # both clients made and connected before timing
        hp.check_bucket()
        src = workdir / "source.bin"
        write_random(src, size)
        ctx: dict[str, Any] = {"s3": s3, "hp": hp, "bucket": bucket, "src": src, "size": size,
                               "workdir": workdir, "settle": args.settle,
                               "boto3_chunk": TransferConfig().multipart_chunksize}
        print(f"bucket {bucket} at {args.endpoint}; {args.size_mb} MiB, {args.rounds} rounds; "
              f"hpcflow part_size {args.part_size_mb} MiB x {args.concurrency} threads, "
              f"boto3 TransferConfig() defaults "
              f"({ctx['boto3_chunk'] // MIB} MiB x {TransferConfig().max_request_concurrency})",
              flush=True)
        for number in range(1, args.rounds + 1):
            if number > 1:
                refresh_content(src, size)
            if all_keys(s3, bucket):
                raise SystemExit(f"round {number}: the bucket is not empty")
            ctx["sha256"] = sha256_of(src)
            order = list(TOOLS) if number % 2 else list(reversed(TOOLS))
            current = Round(number, order)
            for tool in order:
                timings, reupload = run_tool(tool, number, ctx)
                current.timings += timings
                current.reupload = reupload or current.reupload
                print(json.dumps({"round": number, "tool": tool,
                                  **{t.direction: round(t.seconds, 3) for t in timings},
                                  **{f"{t.direction}_cpu": round(t.cpu_seconds, 2)
                                     for t in timings},
                                  **({"reupload": round(reupload["seconds"], 3)}
                                     if reupload else {})}), flush=True)
            rounds.append(current)
        summary = report(rounds, size)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "size_bytes": size, "endpoint": args.endpoint,
                "hpcflow": {"part_size": hp.part_size, "max_concurrency": hp.max_concurrency},
                "boto3": {"version": boto3.__version__,
                          "multipart_chunksize": ctx["boto3_chunk"]},
                "rounds": [asdict(r) for r in rounds], **summary}, indent=2) + "\n")
        return 0
    finally:
        if created:
            with contextlib.suppress(Exception):
                empty_bucket(s3, bucket)
            try:
                s3.delete_bucket(Bucket=bucket)
            except Exception as exc:
                print(f"s3_throughput: could not delete bucket {bucket}: {exc}",
                      file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
