"""Object storage for the components that use it (the trainer and the API): one boto3 client factory and one
error type, so both speak to S3-compatible servers the same way and say what went wrong the same way.

boto3 reads the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``) and retries throttling, 5xx and connection errors per request. Errors become
:class:`StorageError` with a kind (``unavailable``, ``denied``, ``missing``, ``invalid``) and a message built
here, never botocore's text, and scrubbed of credential values: credentials never reach a status, a log line
or an HTTP answer. boto3 is imported when a client is made, so importing this module costs nothing.
"""

import os
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Kind = Literal["unavailable", "denied", "missing", "invalid"]

SECRET_VARIABLES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_DENIED: Final = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401", "Forbidden",
                            "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem"})
_MISSING: Final = frozenset({"NoSuchBucket", "NoSuchKey", "404", "NotFound"})
_TRANSIENT: Final = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "503", "500",
                               "502", "504", "Throttling", "RequestTimeTooSkewed"})


class StorageError(Exception):
    """An object-storage operation failed; ``kind`` says whether waiting, credentials or the URI would help."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(redact(message))
        self.kind = kind
        self.message = str(self)

    @property
    def missing(self) -> bool:
        """The bucket or the object does not exist (waiting or other credentials would not help)."""
        return self.kind == "missing"


def redact(text: str) -> str:
    """``text`` without the values of the credential variables in this process's environment."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def classify(exc: BaseException, what: str) -> StorageError:
    """Turn a boto3/botocore exception about ``what`` (``reading s3://b/k``) into a :class:`StorageError`."""
    from botocore import exceptions as bx

    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError("denied", f"{what}: no object storage credentials (AWS_ACCESS_KEY_ID and "
                                      "AWS_SECRET_ACCESS_KEY) were found")
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        # the server's own reason ("No writable volumes"), except for refused credentials (it may echo them)
        if error.get("Message") and str(error["Message"]) != code and not (code in _DENIED or status in (401, 403)):
            code = f"{code}: {redact(str(error['Message']))[:300]}" if code else redact(str(error["Message"]))[:300]
        name = code.split(":")[0]
        if name in _DENIED or status in (401, 403):
            return StorageError("denied", f"{what}: access denied ({code or status}): check the credentials "
                                          "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and their rights on the bucket")
        if name in _MISSING or status == 404:
            thing = "bucket" if name == "NoSuchBucket" else "object"
            return StorageError("missing", f"{what}: no such {thing} ({code or status})")
        if name in _TRANSIENT or status >= 500:
            return StorageError("unavailable", f"{what}: object storage answered {code or status}")
        return StorageError("invalid", f"{what}: object storage refused the request ({code or status})")
    if isinstance(exc, bx.BotoCoreError | OSError):  # connection refused or reset, timeouts, DNS
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "the default endpoint")
        return StorageError("unavailable", f"{what}: object storage at {_without_userinfo(endpoint)} is unreachable "
                                           f"({type(exc).__name__})")
    cause = exc.__cause__ or exc.__context__  # boto3 wraps the server's answer (S3UploadFailedError from a ClientError)
    if isinstance(cause, Exception) and cause is not exc:
        return classify(cause, what)
    return StorageError("invalid", f"{what}: {type(exc).__name__}: {redact(str(exc))[-300:]}")


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def make_client(endpoint: str | None = None, *, attempts: int | None = None, connect_timeout: float = 10,
                read_timeout: float = 60) -> "S3Client":
    """An S3 client configured from the standard ``AWS_*`` variables (credentials are read now).

    ``endpoint`` overrides ``AWS_ENDPOINT_URL`` (the API signs URLs for the endpoint clients reach);
    ``attempts`` per request default to ``AWS_MAX_ATTEMPTS``, else 4. Path-style addressing when an endpoint is
    given (MinIO, Ceph, SeaweedFS serve buckets under the path); checksums only where the operation requires
    them, since S3-compatible servers and GCS do not all accept the CRC trailers boto3 sends by default since 1.36.
    """
    import boto3
    from botocore.config import Config

    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or 4)},
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        s3={"addressing_style": "path" if endpoint else "auto"},
        request_checksum_calculation="when_required", response_checksum_validation="when_required")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint, config=config)
