"""The ``status`` of a YoloTraining, its vocabulary, and who writes which field.

The operator owns the infrastructure side (phase, conditions, its account of why a training waits or
ended, job name); the trainer owns the training side (stage, epochs, progress, metrics, artifacts and
its own failure). Each writes only its own fields (:mod:`yolo_crd.ownership` checks every patch), with
JSON merge patches on the status subresource, so the two never overwrite each other.
"""

import datetime as dt
import math
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator

from yolo_crd.delivery import ExportProgress, ExportResult, QualityGate
from yolo_crd.wire import StatusModel

#: The most per-epoch entries in ``status.history``: a bounded sample (see :mod:`yolo_crd.history`), so that a
#: status write costs the same at epoch 300 as at epoch 3 and the whole resource stays under 32 KiB.
HISTORY_LIMIT: Final = 59
#: The most entries in ``status.artifacts``: a run's five files, its plots (at most 24) and its exports; the
#: bound keeps the resource small (tests/unit/test_history.py measures a full one).
ARTIFACTS_LIMIT: Final = 40
#: The most entries in ``status.exports`` (one per format of :data:`yolo_crd.delivery.EXPORT_FORMATS`).
EXPORTS_LIMIT: Final = 4


class Phase(StrEnum):
    """Where the training is in its life, as Kubernetes users read it (operator-owned)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Stage(StrEnum):
    """What the trainer is doing right now (trainer-owned; see :func:`yolo_crd.outcome.display_stage`)."""

    INITIALIZING = "initializing"
    DOWNLOADING = "downloading"
    TRAINING = "training"
    FINALIZING = "finalizing"
    EXPORTING = "exporting"
    COMPLETED = "completed"
    FAILED = "failed"


class Reason(StrEnum):
    """Machine-readable causes, CamelCase as in Kubernetes conditions."""

    # the trainer's failures (``trainingFailure.reason``); ModelNotFound is also the operator's (and the local
    # backend's) reason when a ``task/<id>`` or ``training/<name>`` model names no usable training
    MODEL_NOT_FOUND = "ModelNotFound"
    DATASET_INVALID = "DatasetInvalid"
    OUT_OF_MEMORY = "OutOfMemory"
    TRAINING_ERROR = "TrainingError"
    STORAGE_UNAVAILABLE = "StorageUnavailable"  # object storage unreachable (or failing) after retries
    ACCESS_DENIED = "AccessDenied"  # object storage refused the credentials (or there are none)
    OUTPUT_INVALID = "OutputInvalid"  # spec.output names a bucket that does not exist
    EXPORT_FAILED = "ExportFailed"  # an export of spec.export could not be made (ultralytics' message)
    EXPORT_MISMATCH = "ExportMismatch"  # an export validates worse than the .pt model, beyond spec.exportTolerance
    # the verdict's, on the trainer's report: the final metrics miss spec.successCriteria (yolo_crd.delivery)
    QUALITY_GATE_NOT_MET = "QualityGateNotMet"
    # operator (and the local backend, which plays its part on one machine)
    INVALID_SPEC = "InvalidSpec"
    QUEUED = "Queued"
    UNSCHEDULABLE = "Unschedulable"
    FAILED_CREATE = "FailedCreate"  # the Job controller cannot make the pod (a ResourceQuota, a LimitRange...)
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    OOM_KILLED = "OOMKilled"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    INVALID_INPUT = "InvalidInput"
    JOB_DELETED = "JobDeleted"
    TRAINER_EXITED = "TrainerExited"
    CANCELLED = "Cancelled"
    EARLY_STOPPED = "EarlyStopped"  # a sweep's median rule stopped this trial (yolo_crd.search.early_stops)


class StopReason(StrEnum):
    """Why training ended before or at ``totalEpochs`` (trainer-owned)."""

    EPOCHS = "epochs"
    EARLY_STOPPING = "early_stopping"
    TIME_LIMIT = "time_limit"


class EpochMetrics(StatusModel):
    """Validation metrics and losses of one epoch, as shown in ``status.metrics`` and ``status.history``."""

    epoch: Annotated[int, Field(ge=0)]
    precision: float | None = None
    recall: float | None = None
    map50: float | None = Field(default=None, alias="mAP50")
    map50_95: float | None = Field(default=None, alias="mAP50-95")
    f1_score: float | None = None
    train_box_loss: float | None = None
    train_cls_loss: float | None = None
    train_dfl_loss: float | None = None
    val_box_loss: float | None = None
    val_cls_loss: float | None = None
    val_dfl_loss: float | None = None


class FinalMetrics(StatusModel):
    """The final validation of best.pt, with exactly the keys of the task-status spec.

    A value is None when validation produced no finite number (a diverged run): JSON has no NaN, and the
    envelope shows such a metric as null rather than inventing one.
    """

    map50: float | None = Field(default=None, alias="mAP50")
    map50_95: float | None = Field(default=None, alias="mAP50-95")
    precision: float | None = None
    recall: float | None = None
    f1_score: float | None = Field(default=None, alias="f1_score")

    @classmethod
    def from_validation(cls, map50: float, map50_95: float, precision: float, recall: float) -> "FinalMetrics":
        """Round as the spec shows (4 places), computing F1 from the unrounded precision and recall."""
        f1 = f1_score(precision, recall) if math.isfinite(precision) and math.isfinite(recall) else math.nan
        return cls(
            mAP50=_rounded(map50),
            **{"mAP50-95": _rounded(map50_95)},
            precision=_rounded(precision),
            recall=_rounded(recall),
            f1_score=_rounded(f1),
        )

    def view(self) -> dict[str, float | None]:
        """The five spec keys, each present (null when unknown), as the envelope shows them."""
        return {"mAP50": self.map50, "mAP50-95": self.map50_95, "precision": self.precision,
                "recall": self.recall, "f1_score": self.f1_score}


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


class TrainingFailure(StatusModel):
    """Why the trainer itself gave up (trainer-owned): a reason from :class:`Reason` and a plain message."""

    reason: str
    message: str


class DatasetSkipped(StatusModel):
    """What ultralytics will skip in the dataset: undecodable images (and their label files), with examples why."""

    images: Annotated[int, Field(ge=0)] = 0
    labels: Annotated[int, Field(ge=0)] = 0
    reasons: list[str] = Field(default_factory=list, max_length=5)


#: What an artifact is: weights (best.pt, last.pt), metrics (results.csv), config (args.yaml, data.yaml),
#: plot (ultralytics' curves, confusion matrices and batch images), export (best.onnx, best.torchscript).
ArtifactKind = Literal["weights", "metrics", "config", "plot", "export"]


class Artifact(StatusModel):
    """One file a run produced: ``best.pt``, ``last.pt``, ``results.csv``, ``args.yaml``, ``data.yaml``, its
    plots (``confusion_matrix.png``...) and its exports (``best.onnx``...).

    ``uri`` is ``s3://...`` when the run has an output in object storage, else the file's path where the
    trainer wrote it (a PVC or the local state directory). ``kind`` is absent in statuses of older trainers.
    """

    name: Annotated[str, Field(min_length=1, max_length=255)]
    kind: ArtifactKind | None = None
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Lineage(StatusModel):
    """Which weights a training started from: the earlier training (when ``model`` named one) and their sha256."""

    source_task: str | None = None
    source_name: str | None = None
    model: str | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class Download(StatusModel):
    """Progress of fetching the dataset or the model from object storage (stage ``downloading``)."""

    uri: str
    done_bytes: Annotated[int, Field(ge=0)] = 0
    total_bytes: Annotated[int, Field(ge=0)] = 0
    files: Annotated[int, Field(ge=0)] = 0
    total_files: Annotated[int, Field(ge=0)] = 0
    cached: bool = False


class Condition(StatusModel):
    """A standard Kubernetes condition (``metav1.Condition`` shape)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class TrainingStatus(StatusModel):
    """Everything a user can learn about a training. Every field is optional: each writer sets its own."""

    phase: Phase | None = None
    stage: Stage | None = None
    current_epoch: Annotated[int, Field(ge=0)] | None = None
    total_epochs: Annotated[int, Field(ge=0)] | None = None
    progress: Annotated[float, Field(ge=0, le=100)] | None = None
    metrics: EpochMetrics | None = None
    best_epoch: Annotated[int, Field(ge=0)] | None = None
    history: list[EpochMetrics] | None = Field(default=None, max_length=HISTORY_LIMIT)
    final_metrics: FinalMetrics | None = None
    weights_path: str | None = None
    project_path: str | None = None
    stop_reason: StopReason | None = None
    resumed_from_epoch: Annotated[int, Field(ge=0)] | None = None
    training_failure: TrainingFailure | None = None
    dataset_skipped: DatasetSkipped | None = None
    artifacts: list[Artifact] | None = Field(default=None, max_length=ARTIFACTS_LIMIT)
    lineage: Lineage | None = None
    download: Download | None = None
    exports: list[ExportResult] | None = Field(default=None, max_length=EXPORTS_LIMIT)
    export_progress: ExportProgress | None = None
    quality_gate: QualityGate | None = None
    reason: str | None = None
    message: str | None = None
    job_name: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    last_update_time: str | None = None
    conditions: list[Condition] | None = None
    observed_generation: int | None = None

    @field_validator("stage", mode="before")
    @classmethod
    def _forget_legacy_stages(cls, value: object) -> object:
        # a stored status may carry stage "queued" or "scheduling" (operator-written stages that no writer sets
        # now): they parse as no stage, and the operator's reason (Queued, Unschedulable) says the same
        return None if value in ("queued", "scheduling") else value

    def condition(self, kind: str) -> Condition | None:
        """The condition of that type, if any."""
        return next((c for c in self.conditions or [] if c.type == kind), None)


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp, the format Kubernetes uses."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_percent(current_epoch: int, total_epochs: int) -> float:
    """Percent of epochs done, one decimal, never below 0 nor above 100 (0 when the total is unknown)."""
    if total_epochs <= 0:
        return 0.0
    share = min(max(current_epoch, 0), total_epochs) / total_epochs
    return round(100.0 * share, 1)


def f1_score(precision: float, recall: float) -> float:
    """The harmonic mean 2PR/(P+R) of precision and recall; 0 when both are 0 (or not finite)."""
    total = precision + recall
    if not math.isfinite(total) or total <= 0:
        return 0.0
    return 2.0 * precision * recall / total


def eta_seconds(status: TrainingStatus, now: dt.datetime | None = None) -> float | None:
    """Seconds left if the remaining epochs go as fast as the done ones; None before the first epoch."""
    if not status.start_time or not status.progress or status.progress >= 100:
        return None
    try:
        started = dt.datetime.fromisoformat(status.start_time)
    except ValueError:
        return None
    elapsed = ((now or dt.datetime.now(dt.UTC)) - started).total_seconds()
    return max(0.0, elapsed * (100.0 - status.progress) / status.progress)
