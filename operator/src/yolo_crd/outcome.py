"""What users see of a training, composed from what the operator and the trainer each wrote.

The trainer reports its own failure (``trainingFailure``: DatasetInvalid, ModelNotFound, OutOfMemory,
TrainingError, and for object storage StorageUnavailable, AccessDenied, OutputInvalid) and the operator
reports what happened to the Job and its Pods (``reason``/``message``:
Unschedulable, OOMKilled, DeadlineExceeded, BackoffLimitExceeded, Cancelled...). These pure functions
turn the two accounts into one story for every surface (the envelope, ``/tasks``, the operator's final
reason and Events, the dashboard): a training failure outlives the Job controller's consequences of it,
and a failure the trainer could not see coming (a deadline, an OOM kill, a cancel) keeps its own reason.
"""

from enum import StrEnum
from typing import Final

from yolo_crd.status import Phase, Reason, Stage, TrainingStatus


class TaskState(StrEnum):
    """The four states of the spec's ``data.status``."""

    PENDING = "pending"
    PROGRESS = "progress"
    SUCCESS = "success"
    FAILURE = "failure"


FINISHED_PHASES: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED})
#: Operator reasons that are the true cause of a failure even when the trainer reported one before it:
#: the trainer was stopped from outside (or never started) and could not know.
OUTSIDE_CAUSES: Final = frozenset({
    Reason.DEADLINE_EXCEEDED, Reason.OOM_KILLED, Reason.CANCELLED, Reason.INVALID_SPEC,
    Reason.IMAGE_PULL_BACK_OFF, Reason.UNSCHEDULABLE,
})
NO_FINAL_METRICS: Final = "training ended without reporting final metrics"


def finished(status: TrainingStatus | None) -> bool:
    """True once the operator (or the local backend) has declared the training Succeeded or Failed."""
    return status is not None and status.phase in FINISHED_PHASES


def task_state(status: TrainingStatus | None) -> TaskState:
    """Classify a status into the spec's four states.

    Failure is the operator's verdict (phase Failed): a trainer that reported a failure may still be
    retried by its Job. Success is the trainer's final report (stage completed with final metrics), which
    the operator then confirms. Once the trainer has started, a training never goes back to pending.
    """
    if status is None:
        return TaskState.PENDING
    if status.phase == Phase.FAILED:
        return TaskState.FAILURE
    if status.stage == Stage.COMPLETED or status.phase == Phase.SUCCEEDED:
        return TaskState.SUCCESS if status.final_metrics is not None else TaskState.FAILURE
    if status.stage is not None or status.phase == Phase.RUNNING:
        return TaskState.PROGRESS
    return TaskState.PENDING


def failure(status: TrainingStatus | None) -> tuple[str | None, str | None]:
    """The (reason, message) that explains a failed training, or (None, None) when nothing says why."""
    if status is None:
        return None, None
    trainer = status.training_failure
    if trainer is not None and status.reason not in OUTSIDE_CAUSES:
        return trainer.reason, trainer.message
    if status.final_metrics is None and (status.stage == Stage.COMPLETED or status.phase == Phase.SUCCEEDED):
        return Reason.TRAINING_ERROR.value, NO_FINAL_METRICS
    return status.reason, status.message or status.reason


def display_stage(status: TrainingStatus | None) -> str:
    """The stage to show: the trainer's once it runs, else why the training waits (queued or scheduling)."""
    if status is not None and status.stage is not None:
        return status.stage.value
    if status is not None and status.reason == Reason.QUEUED:
        return "queued"
    if status is not None and status.phase == Phase.RUNNING:
        return Stage.INITIALIZING.value
    return "scheduling"
