"""What users see of a training, composed from what the operator and the trainer each wrote.

The trainer reports its own failure (``trainingFailure``: DatasetInvalid, ModelNotFound, OutOfMemory,
TrainingError, and for object storage StorageUnavailable, AccessDenied, OutputInvalid) and the operator
reports what happened to the Job and its Pods (``reason``/``message``:
Unschedulable, OOMKilled, DeadlineExceeded, BackoffLimitExceeded, Cancelled...). These pure functions
turn the two accounts into one story for every surface (the envelope, ``/tasks``, the operator's final
reason and Events, the dashboard): a training failure outlives the Job controller's consequences of it,
and a failure the trainer could not see coming (a deadline, an OOM kill, a cancel) keeps its own reason.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from yolo_crd.delivery import QUALITY_GATE_CONDITION, QUALITY_GATE_NOT_MET
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
    Reason.DEADLINE_EXCEEDED, Reason.OOM_KILLED, Reason.CANCELLED, Reason.EARLY_STOPPED, Reason.INVALID_SPEC,
    Reason.IMAGE_PULL_BACK_OFF, Reason.UNSCHEDULABLE,
})
NO_FINAL_METRICS: Final = "training ended without reporting final metrics"


def finished(status: TrainingStatus | None) -> bool:
    """True once the operator (or the local backend) has declared the training Succeeded or Failed."""
    return status is not None and status.phase in FINISHED_PHASES


def reported(status: TrainingStatus | None) -> bool:
    """The trainer's final report arrived: stage completed with final metrics (its weights are stored)."""
    return status is not None and status.stage == Stage.COMPLETED and status.final_metrics is not None


def gate_failed(status: TrainingStatus | None) -> bool:
    """The final report arrived and its final metrics miss the success criteria (``qualityGate.passed`` false).

    From that moment the training has failed with QualityGateNotMet, its weights and exports kept.
    """
    return reported(status) and status is not None and status.quality_gate is not None \
        and not status.quality_gate.passed


def reported_success(status: TrainingStatus | None) -> bool:
    """The trainer's final report arrived and passed its quality gate (if it had one).

    From that moment the training has succeeded, whatever happens to its Job or process afterwards.
    """
    return reported(status) and not gate_failed(status)


def final(status: TrainingStatus | None) -> bool:
    """Whether the training's outcome can no longer change: a verdict was written, or the trainer's final
    report was accepted (which every later verdict confirms: a success, or a missed quality gate). Streams
    end, and clients stop polling, only then."""
    return finished(status) or reported(status)


@dataclass(frozen=True)
class RunEnd:
    """How the infrastructure saw a trainer's run end: the Job's verdict, the local trainer process's exit,
    a cancel, a Job that vanished, a spec refused before any run.

    ``reason``/``message`` are the infrastructure's account (DeadlineExceeded, OOMKilled, BackoffLimitExceeded,
    InvalidInput, TrainerExited, JobDeleted, Cancelled, InvalidSpec...); unused when ``succeeded``.
    """

    succeeded: bool
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A training's terminal outcome: the operator's (or local backend's) phase, reason and message."""

    phase: Phase
    reason: str | None = None
    message: str | None = None


def verdict(status: TrainingStatus | None, end: RunEnd | None) -> Verdict | None:
    """The one decision of whether a training is over and how; None while it is not.

    * A verdict already written is final (the CRD's CEL rule, and the local store's, refuse to change it).
    * The trainer's final report is final too. Its final metrics missing the success criteria
      (:func:`gate_failed`) is a failure, QualityGateNotMet with the gate's message. Otherwise it is a
      success (:func:`reported_success`): a Job that fails afterwards
      (its deadline expiring between the final report and the pod's exit), a cancel that comes too late or
      a trainer process that exits badly after reporting never turn it into a failure.
    * Otherwise nothing is over until the infrastructure says the run ended (``end``). Then a cancel is
      Cancelled; a run that ended well without final metrics is a TrainingError; a failure the trainer
      reported explains the run's end, unless the trainer was stopped from outside and could not know
      (:data:`OUTSIDE_CAUSES`: a deadline, an OOM kill, a cancel).
    """
    if status is not None and finished(status):
        assert status.phase is not None
        return Verdict(status.phase, status.reason, status.message)
    gate = status.quality_gate if status is not None else None
    if gate is not None and gate_failed(status):
        return Verdict(Phase.FAILED, Reason.QUALITY_GATE_NOT_MET.value, gate.message)
    if reported_success(status):
        return Verdict(Phase.SUCCEEDED)
    if end is None:
        return None
    if end.succeeded:
        return Verdict(Phase.FAILED, Reason.TRAINING_ERROR.value, NO_FINAL_METRICS)
    trainer = status.training_failure if status is not None else None
    if trainer is not None and end.reason not in OUTSIDE_CAUSES:
        return Verdict(Phase.FAILED, trainer.reason, trainer.message)
    reason = end.reason or Reason.TRAINING_ERROR.value
    return Verdict(Phase.FAILED, reason, end.message or reason)


def task_state(status: TrainingStatus | None) -> TaskState:
    """Classify a status into the spec's four states, as :func:`verdict` decides.

    Failure is the written verdict (phase Failed): a trainer that reported a failure may still be retried
    by its Job. Success is the trainer's final report (stage completed with final metrics), final from
    then on, which the verdict then confirms. A trainer that says it completed without final metrics is
    still in progress until the verdict (a TrainingError). Once the trainer has started, a training never
    goes back to pending.
    """
    if status is None:
        return TaskState.PENDING
    if status.phase == Phase.FAILED or gate_failed(status):
        return TaskState.FAILURE
    if status.phase == Phase.SUCCEEDED:  # without final metrics only from an older operator: not a success
        return TaskState.SUCCESS if status.final_metrics is not None else TaskState.FAILURE
    if reported_success(status):
        return TaskState.SUCCESS
    if status.stage is not None or status.phase == Phase.RUNNING:
        return TaskState.PROGRESS
    return TaskState.PENDING


def failure(status: TrainingStatus | None) -> tuple[str | None, str | None]:
    """The (reason, message) that explains a failed training, or (None, None) when nothing says why."""
    if status is None:
        return None, None
    if gate_failed(status) and status.quality_gate is not None:
        return Reason.QUALITY_GATE_NOT_MET.value, status.quality_gate.message
    trainer = status.training_failure
    if trainer is not None and status.reason not in OUTSIDE_CAUSES:
        return trainer.reason, trainer.message
    if status.final_metrics is None and status.phase == Phase.SUCCEEDED:
        return Reason.TRAINING_ERROR.value, NO_FINAL_METRICS
    return status.reason, status.message or status.reason


def display_stage(status: TrainingStatus | None) -> str:
    """The stage to show: the trainer's once it runs, else why the training waits (queued or scheduling), or
    how it ended before any trainer ran (cancelled while pending, refused: failed)."""
    if status is not None and status.stage is not None:
        return status.stage.value
    if status is not None and status.phase == Phase.FAILED:
        return "cancelled" if status.reason == Reason.CANCELLED else Stage.FAILED.value
    if status is not None and status.reason == Reason.QUEUED:
        return "queued"
    if status is not None and status.phase == Phase.RUNNING:
        return Stage.INITIALIZING.value
    return "scheduling"


def gate_condition(status: TrainingStatus | None) -> tuple[str, str, str, str]:
    """The ``QualityGate`` condition (type, status, reason, message) of a finished training with success criteria:
    the trainer's judgement when it made one, else False/NotEvaluated (it ended before its final metrics), so
    that ``kubectl wait --for=condition=QualityGate`` never waits on a training that is over."""
    gate = status.quality_gate if status is not None else None
    if gate is None:
        return (QUALITY_GATE_CONDITION, "False", "NotEvaluated",
                "the training ended before its final metrics could be judged against spec.successCriteria")
    return (QUALITY_GATE_CONDITION, "True" if gate.passed else "False",
            "QualityGateMet" if gate.passed else QUALITY_GATE_NOT_MET, gate.message)
