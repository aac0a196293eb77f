"""Retrying S3 calls through outages and throttling, and one-line errors for the rest.

botocore retries a few times on its own (seconds). A login node's or a compute node's way to
the object store can be gone for longer (a switch reboot, a proxy restart), so every call
hpcflow makes is retried with capped exponential backoff until ``deadline`` seconds have
passed. What retrying cannot fix (no such bucket, wrong keys) fails at once with a message
that names the bucket and what to do.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from hpcflow.errors import HpcflowError, NotFoundError

log = logging.getLogger("hpcflow.storage")

T = TypeVar("T")

#: S3 error codes that mean "try again later".
RETRY_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestTimeout", "InternalError", "ServiceUnavailable", "503", "500", "502", "504",
    # the server received other bytes than were sent (their MD5 or SHA-256 differ): sent again
    "BadDigest", "XAmzContentSHA256Mismatch",
})
#: Codes whose answer is "the credentials are wrong".
CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                              "InvalidToken", "ExpiredToken", "403"})
#: S3 refuses requests signed further than this off its own clock.
MAX_SKEW = 900.0
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class StorageUnavailableError(HpcflowError):
    """The object store could not be reached within the retry deadline."""


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else None


def server_clock_skew(exc: BaseException) -> float | None:
    """How far this machine's clock is ahead of the server's, from the Date header of an
    error answer (a refused HEAD has no error code: a 403 may be a skewed clock)."""
    import email.utils

    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    sent = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return time.time() - email.utils.parsedate_to_datetime(sent).timestamp()
    except (TypeError, ValueError):
        return None


def is_retryable(exc: BaseException) -> bool:
    """Connection trouble, timeouts, throttling and server errors: yes; anything a client
    could fix (a missing key, a refused signature): no."""
    from botocore.exceptions import BotoCoreError, ClientError
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ClientError):
        code = error_code(exc) or ""
        return code in RETRY_CODES or code.startswith("5")
    if isinstance(exc, BotoCoreError):
        # botocore's connection, timeout and streaming errors; not its "invalid parameter"
        # or "no credentials" errors, which would fail the same way again
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )
        from botocore.exceptions import (
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
        )

        return isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError
                          | ResponseStreamingError)
    return isinstance(exc, Urllib3Error | ConnectionError | TimeoutError)


def missing_bucket(bucket: str, endpoint: str | None) -> HpcflowError:
    return HpcflowError(f"bucket {bucket!r} at {endpoint or 'the default AWS endpoint'} does "
                        f"not exist: create it (e.g. `aws s3 mb s3://{bucket}`) or set the "
                        "bucket name")


def explain(exc: BaseException, bucket: str, endpoint: str | None, what: str) -> HpcflowError:
    """A one-line error for an S3 failure that retrying does not fix."""
    from botocore.exceptions import NoCredentialsError

    where = f"bucket {bucket!r} at {endpoint or 'the default AWS endpoint'}"
    code = error_code(exc)
    if isinstance(exc, NoCredentialsError):
        return HpcflowError(f"no S3 credentials for {where}: set s3_config['access_key'] and "
                            "['secret_key'], AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an AWS "
                            "profile, or access_key/secret_key in the config's [storage]")
    if code == "NoSuchBucket":
        return missing_bucket(bucket, endpoint)
    skew = server_clock_skew(exc)
    if code == "RequestTimeTooSkewed" or (code in CREDENTIAL_CODES and skew is not None
                                          and abs(skew) > MAX_SKEW):
        off = f" ({skew:+.0f} s)" if skew is not None else ""
        return HpcflowError(f"{where} refused the request because this machine's clock is "
                            f"off by more than 15 minutes{off}: synchronise it (chrony, ntpd)")
    if code in CREDENTIAL_CODES:
        return HpcflowError(f"S3 refused the credentials for {where} ({code}) while it was "
                            f"asked to {what}: check the access and secret keys and their "
                            "permissions on the bucket")
    if code in MISSING_CODES:
        return NotFoundError(f"{what}: not in {where}")
    return HpcflowError(f"S3 could not {what} ({where}): {code or type(exc).__name__}: "
                        f"{str(exc)[:300]}")


def with_retries(call: Callable[[], T], what: str, deadline: float, bucket: str,
                 endpoint: str | None, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, retried with backoff (0.5 s doubling to 15 s, jittered) while it fails
    in a retryable way and ``deadline`` seconds have not passed."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if isinstance(exc, HpcflowError):
                raise
            if not is_retryable(exc):
                raise explain(exc, bucket, endpoint, what) from exc
            attempt += 1
            waited = time.monotonic() - started
            if waited >= deadline:
                raise StorageUnavailableError(
                    f"S3 could not {what} for {waited:.0f} s ({attempt} attempts; bucket "
                    f"{bucket!r} at {endpoint or 'AWS'}): {type(exc).__name__}: "
                    f"{str(exc)[:200]}") from exc
            pause = min(15.0, 0.5 * 2 ** min(attempt - 1, 5)) * random.uniform(0.75, 1.25)
            pause = min(pause, max(0.1, deadline - waited))
            if attempt == 1 or attempt % 5 == 0:
                log.warning("S3 %s failed (%s: %s); retrying for up to %.0f s more", what,
                            type(exc).__name__, str(exc)[:120], deadline - waited)
            sleep(pause)
