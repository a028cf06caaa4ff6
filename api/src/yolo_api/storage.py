"""Every object-storage call the API makes: presigned download URLs, and reading a small object (results.csv's
text, a plot the dashboard shows inline).

boto3, like the trainer (see docs/storage.md for why): it reads the standard ``AWS_*`` variables of the
API's own environment (locally the user's; on a cluster a Secret named in the chart). Presigning needs no
request: the URL is signed for the endpoint clients reach (``YOLO_API_S3_PUBLIC_ENDPOINT``, else
``AWS_ENDPOINT_URL``), and it expires after ``YOLO_API_ARTIFACT_URL_SECONDS``. The client factory and
:class:`StorageError` are :mod:`yolo_io.s3`'s, shared with the trainer: a message built there, never one that
could carry a credential.
"""

import functools
import os
from typing import TYPE_CHECKING, Final

from yolo_crd.locations import parse_s3
from yolo_io import s3
from yolo_io.s3 import StorageError

__all__ = ["StorageError", "make_client", "presigned_url", "read_bytes", "read_text"]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_TEXT_BYTES: Final = 8_000_000


def make_client(endpoint: str | None = None) -> "S3Client":
    """An S3 client from the ``AWS_*`` variables (:func:`yolo_io.s3.make_client`), with the short timeouts of a
    request being answered; ``endpoint`` overrides ``AWS_ENDPOINT_URL`` (presigning)."""
    return s3.make_client(endpoint, attempts=3, connect_timeout=5, read_timeout=30)


_VARIABLES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                     "AWS_REGION")


def _client(endpoint: str | None) -> "S3Client":
    """One client per endpoint and environment (made once: creating a boto3 client costs tens of milliseconds)."""
    return _cached(endpoint, tuple(os.environ.get(name) for name in _VARIABLES))


@functools.lru_cache(maxsize=8)
def _cached(endpoint: str | None, _environment: tuple[str | None, ...]) -> "S3Client":
    return make_client(endpoint)


def presigned_url(uri: str, *, expires: int, public_endpoint: str | None = None, filename: str | None = None) -> str:
    """A short-lived GET URL for ``uri`` (``s3://bucket/key``); ``filename`` names the download."""
    where = parse_s3(uri)
    params = {"Bucket": where.bucket, "Key": where.key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    try:
        return _client(public_endpoint).generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
    except Exception as exc:  # no credentials: botocore's NoCredentialsError
        raise StorageError("denied", f"cannot sign a download URL for {uri} ({type(exc).__name__}): the API needs "
                                     "the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the bucket") from None


def _read(uri: str, limit: int) -> bytes:
    """The first ``limit`` bytes of an object; raises :class:`StorageError`."""
    where = parse_s3(uri)
    try:
        body = _client(None).get_object(Bucket=where.bucket, Key=where.key, Range=f"bytes=0-{limit - 1}")["Body"]
        return body.read()
    except Exception as exc:  # botocore's errors, turned into one that says what to do
        raise s3.classify(exc, f"reading {uri}") from None


def read_text(uri: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The text of a small object (``results.csv``), at most ``max_bytes``; raises :class:`StorageError`."""
    return _read(uri, max_bytes).decode("utf-8", errors="replace")


def read_bytes(uri: str, *, max_bytes: int) -> bytes | None:
    """The whole of a small object (a plot), or None when it is larger than ``max_bytes`` (never cut short: an
    image with its end missing is no image); raises :class:`StorageError`."""
    data = _read(uri, max_bytes + 1)
    return None if len(data) > max_bytes else data
