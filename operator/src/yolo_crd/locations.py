"""Where a training's inputs and outputs live: ``s3://`` URIs and references to earlier trainings.

``spec.data`` may be ``s3://bucket/prefix/data.yaml``, ``spec.model`` an ``s3://bucket/key.pt``, a
``task/<task id>`` or a ``training/<name>`` (that training's ``best.pt``), and ``spec.output`` an
``s3://bucket/prefix`` under which a run's artifacts go, in ``<prefix>/<task id>/``. The spec's validators,
the operator, the trainer and the API all parse them here, so they agree on what each string means.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

S3_SCHEME: Final = "s3://"
#: S3's bucket naming rules (3 to 63 lower-case letters, digits, dots and hyphens), as the CRD's pattern.
BUCKET: Final = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
OUTPUT_PATTERN: Final = rf"^s3://{BUCKET}(/[^\s]*)?$"
TASK_PREFIX: Final = "task/"
TRAINING_PREFIX: Final = "training/"
_TASK_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_BUCKET = re.compile(rf"^{BUCKET}$")

#: The artifacts a run uploads, by name (the object's name under ``<prefix>/<task id>/``).
BEST, LAST, RESULTS, ARGS, DATA = "best.pt", "last.pt", "results.csv", "args.yaml", "data.yaml"
ARTIFACT_NAMES: Final = (BEST, LAST, RESULTS, ARGS, DATA)


@dataclass(frozen=True)
class S3Uri:
    """A bucket and a key (or a key prefix, without a trailing slash)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}" if self.key else f"{S3_SCHEME}{self.bucket}"

    def child(self, name: str) -> "S3Uri":
        """The object ``name`` under this prefix."""
        return S3Uri(self.bucket, f"{self.key}/{name}" if self.key else name)

    @property
    def name(self) -> str:
        """The last part of the key (``data.yaml`` of ``s3://b/p/data.yaml``)."""
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> "S3Uri":
        """The prefix this object lies in (``s3://b/p`` of ``s3://b/p/data.yaml``)."""
        return S3Uri(self.bucket, self.key.rsplit("/", 1)[0] if "/" in self.key else "")


def is_s3(value: str) -> bool:
    """Whether ``value`` is an ``s3://`` URI (of any shape)."""
    return value.startswith(S3_SCHEME)


def parse_s3(value: str, *, object_key: bool = True) -> S3Uri:
    """Split an ``s3://bucket/key`` URI; ``object_key=False`` accepts a bare bucket (an output prefix).

    Raises ValueError saying what is wrong, in the words of the spec's validators.
    """
    if not is_s3(value):
        raise ValueError(f"{value!r} is not an s3:// URI")
    bucket, _, key = value[len(S3_SCHEME):].partition("/")
    key = key.strip("/")
    if not _BUCKET.match(bucket):
        raise ValueError(f"{value!r}: {bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, "
                         "'.' and '-')")
    if object_key and not key:
        raise ValueError(f"{value!r} names a bucket but no object")
    if any(part in ("", ".", "..") for part in key.split("/")) and key:
        raise ValueError(f"{value!r}: the key must not contain empty, '.' or '..' parts")
    return S3Uri(bucket, key)


@dataclass(frozen=True)
class SourceRef:
    """A reference to an earlier training whose ``best.pt`` a new one starts from."""

    kind: Literal["task", "training"]
    value: str  # a task id (metadata.uid) or a YoloTraining's name

    def __str__(self) -> str:
        return f"{self.kind}/{self.value}"


def source_ref(model: str) -> SourceRef | None:
    """``task/<id>`` or ``training/<name>`` as a :class:`SourceRef`; None for any other model string.

    Raises ValueError for a malformed reference (``task/`` with no id, a name Kubernetes would refuse).
    """
    if model.startswith(TASK_PREFIX):
        value = model[len(TASK_PREFIX):]
        if not _TASK_ID.match(value):
            raise ValueError(f"model {model!r}: expected task/<task id>, the id POST /train answered")
        return SourceRef("task", value)
    if model.startswith(TRAINING_PREFIX):
        value = model[len(TRAINING_PREFIX):]
        if len(value) > 253 or not _NAME.match(value):
            raise ValueError(f"model {model!r}: expected training/<name of a YoloTraining in this namespace>")
        return SourceRef("training", value)
    return None


def artifact_prefix(output: str, task_id: str) -> S3Uri:
    """Where a run's artifacts go: ``<output>/<task id>``."""
    return parse_s3(output, object_key=False).child(task_id)


def owned_uri(output: str | None, task_id: str, uri: str) -> bool:
    """Whether ``uri`` lies under the run's own artifact prefix ``<output>/<task id>/``.

    Artifact URIs in status are written by the trainer (an image the user may choose): the API signs or
    reads only its own run's objects with its credentials, never another team's bucket that a status names.
    """
    if not output or not is_s3(output) or not is_s3(uri):
        return False
    prefix = artifact_prefix(output, task_id)
    target = parse_s3(uri)
    return target.bucket == prefix.bucket and target.key.startswith(prefix.key.rstrip("/") + "/")


def within(path: str, root: str) -> str | None:
    """``path`` relative to the directory ``root`` (POSIX paths), or None when it does not lie under it."""
    inner, outer = PurePosixPath(path), PurePosixPath(root)
    if inner == outer or outer in inner.parents:
        return str(inner.relative_to(outer))
    return None


def cache_dir(output_dir: Path, kind: str, uri: str) -> Path:
    """Where a trainer keeps what it fetched from ``uri`` (``kind``: datasets or models), on the output volume:
    shared by the trainings that use the same URI. The local API serves a fetched dataset's data.yaml from it."""
    return output_dir / ".cache" / kind / hashlib.sha256(uri.encode()).hexdigest()[:16]
