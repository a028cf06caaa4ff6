"""Every object-storage call the trainer makes, through boto3, with the failures a user can act on.

boto3 is the reference S3 client: AWS S3, MinIO, Ceph RGW, SeaweedFS and GCS (through its S3 interface)
all test against it. It reads the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``), retries throttling, 5xx and connection errors with backoff per
request, and signs presigned URLs. On top of that each operation here is retried for ``retry_seconds``
while the endpoint is unreachable, so a storage hiccup during a long training is waited out, then
reported as ``StorageUnavailable``.

The client and the errors are :mod:`yolo_io.s3`'s, shared with the API: :class:`StorageError` has a kind
(``unavailable``, ``denied``, ``missing``, ``invalid``) and a message scrubbed of credential values, which
never reach a status, a log line or an Event.
"""

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from yolo_crd.locations import S3Uri
from yolo_io.s3 import StorageError, classify, make_client, redact

__all__ = ["ObjectInfo", "ObjectStore", "StorageError", "classify", "make_client", "redact", "sha256_of", "walk"]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK: Final = 1 << 20


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ObjectInfo:
    """An object's key, size and ETag (what the cache compares)."""

    key: str
    size: int
    etag: str


class ObjectStore:
    """The trainer's object-storage operations, each retried while the endpoint is unreachable."""

    def __init__(self, client: "S3Client | None" = None, *, retry_seconds: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._retry_seconds = retry_seconds
        self._sleep = sleep

    @property
    def client(self) -> "S3Client":
        """The boto3 client, made on first use (so a run without s3:// never imports boto3)."""
        if self._client is None:
            self._client = make_client()
        return self._client

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._retry_seconds
        delay = 1.0
        while True:
            try:
                return call()
            except Exception as exc:
                error = classify(exc, what)
                if error.kind != "unavailable" or time.monotonic() + delay > deadline:
                    raise error from None
                log.warning("%s; retrying in %.0fs", error.message, delay)
                self._sleep(delay)
                delay = min(delay * 2, 30.0)

    def head(self, uri: S3Uri) -> ObjectInfo | None:
        """Size and ETag of one object; None when it does not exist."""
        try:
            found: dict[str, Any] = dict(self._retrying(f"reading {uri}", lambda: self.client.head_object(
                Bucket=uri.bucket, Key=uri.key)))
        except StorageError as exc:
            if exc.kind == "missing":
                return None
            raise
        return ObjectInfo(uri.key, int(found.get("ContentLength") or 0), str(found.get("ETag") or ""))

    def list(self, prefix: S3Uri) -> list[ObjectInfo]:
        """Every object under ``prefix/`` (recursively); a missing bucket raises ``missing``."""
        def pages() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=prefix.bucket, Prefix=f"{prefix.key}/" if prefix.key else ""):
                found += [ObjectInfo(item["Key"], int(item.get("Size") or 0), str(item.get("ETag") or ""))
                          for item in page.get("Contents", []) if not item["Key"].endswith("/")]
            return found

        return self._retrying(f"listing {prefix}/", pages)

    def check_bucket(self, uri: S3Uri) -> None:
        """Raise unless the bucket of ``uri`` exists and these credentials may use it."""
        self._retrying(f"checking bucket s3://{uri.bucket}", lambda: self.client.head_bucket(Bucket=uri.bucket))

    def download(self, uri: S3Uri, dest: Path, progress: Callable[[int], None] = lambda _: None) -> None:
        """Fetch one object to ``dest`` (written beside it, then renamed: never a half file in its place)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")

        def fetch() -> None:
            self.client.download_file(uri.bucket, uri.key, str(partial), Callback=progress)
            partial.replace(dest)

        self._retrying(f"reading {uri}", fetch)

    def upload(self, path: Path, uri: S3Uri, sha256: str) -> None:
        """Store a file at ``uri``, its sha256 in the object's metadata."""
        self._retrying(f"writing {uri}", lambda: self.client.upload_file(
            str(path), uri.bucket, uri.key, ExtraArgs={"Metadata": {"sha256": sha256}}))


def walk(store: ObjectStore, prefix: S3Uri) -> Iterator[tuple[ObjectInfo, str]]:
    """Each object under ``prefix`` with its key relative to the prefix."""
    start = len(prefix.key) + 1 if prefix.key else 0
    for info in store.list(prefix):
        yield info, info.key[start:]
