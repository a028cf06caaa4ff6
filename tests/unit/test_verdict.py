"""The one verdict (``yolo_crd.outcome.verdict``): whether a training is over and how, for every surface.

The operator (Job and Pods), the local backend (the trainer process) and the envelope all decide through
it; these cases are the rules users see: a written verdict is final, an accepted success is final, a
failure the trainer could not see coming keeps its own reason.
"""

from typing import Any

import pytest

from yolo_crd.envelope import task_envelope
from yolo_crd.outcome import RunEnd, TaskState, Verdict, display_stage, final, task_state, verdict
from yolo_crd.status import Phase, TrainingStatus

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
SUCCESS_REPORTED = {"phase": "Running", "stage": "completed", "finalMetrics": FINAL, "weightsPath": "/o/best.pt"}
TRAINER_FAILED = {"phase": "Running", "stage": "failed",
                  "trainingFailure": {"reason": "DatasetInvalid", "message": "no such file /d.yaml"}}
DEADLINE = RunEnd(False, "DeadlineExceeded", "training ran longer than activeDeadlineSeconds (60s)")


def status(**wire: Any) -> TrainingStatus:
    return TrainingStatus.model_validate(wire)


@pytest.mark.parametrize(("wire", "end", "expected"), [
    ({"phase": "Running", "stage": "training"}, None, None),
    ({"phase": "Running", "stage": "training"}, RunEnd(True), Verdict(Phase.FAILED, "TrainingError",
                                                                     "training ended without reporting final metrics")),
    (SUCCESS_REPORTED, None, Verdict(Phase.SUCCEEDED)),  # concluded on the report, before the Job ends
    (SUCCESS_REPORTED, RunEnd(True), Verdict(Phase.SUCCEEDED)),
    (SUCCESS_REPORTED, DEADLINE, Verdict(Phase.SUCCEEDED)),  # a deadline after the final report
    (SUCCESS_REPORTED, RunEnd(False, "Cancelled", "cancelled"), Verdict(Phase.SUCCEEDED)),  # a cancel too late
    (SUCCESS_REPORTED, RunEnd(False, "TrainerExited", "killed by SIGKILL"), Verdict(Phase.SUCCEEDED)),
    (TRAINER_FAILED, None, None),  # the Job may still retry
    (TRAINER_FAILED, RunEnd(False, "BackoffLimitExceeded", "failed 3 retries"),
     Verdict(Phase.FAILED, "DatasetInvalid", "no such file /d.yaml")),
    (TRAINER_FAILED, DEADLINE, Verdict(Phase.FAILED, "DeadlineExceeded", DEADLINE.message)),  # outside cause
    (TRAINER_FAILED, RunEnd(False, "Cancelled", "cancelled"), Verdict(Phase.FAILED, "Cancelled", "cancelled")),
    ({"phase": "Running", "stage": "training"}, RunEnd(False, "OOMKilled", "killed"),
     Verdict(Phase.FAILED, "OOMKilled", "killed")),
    ({"phase": "Failed", "reason": "Cancelled", "message": "cancelled", "stage": "completed", "finalMetrics": FINAL},
     RunEnd(True), Verdict(Phase.FAILED, "Cancelled", "cancelled")),  # written is final
    ({"phase": "Succeeded", "stage": "training", "finalMetrics": FINAL}, DEADLINE, Verdict(Phase.SUCCEEDED)),
    ({}, RunEnd(False, "InvalidSpec", "epochs: too many"), Verdict(Phase.FAILED, "InvalidSpec", "epochs: too many")),
])
def test_the_verdict(wire: dict[str, Any], end: RunEnd | None, expected: Verdict | None) -> None:
    assert verdict(status(**wire), end) == expected


@pytest.mark.parametrize("wire", [
    {"phase": "Running", "stage": "training"}, SUCCESS_REPORTED, TRAINER_FAILED, {"phase": "Failed", "reason": "X"},
    {"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL}, {"stage": "completed"}, {},
])
def test_the_envelope_ends_only_where_the_verdict_is_final(wire: dict[str, Any]) -> None:
    """What the API answers as success or failure (and SSE ends on) is exactly what no later event changes."""
    current = status(**wire)
    assert (task_state(current) in (TaskState.SUCCESS, TaskState.FAILURE)) == final(current)
    later = verdict(current, DEADLINE)
    if final(current):
        assert later is not None
        expected = "success" if later.phase == Phase.SUCCEEDED else "failure"
        assert task_envelope("t", current)[1]["data"]["status"] == expected


def test_an_accepted_success_stays_a_success_whatever_the_job_does() -> None:
    """The bug: a deadline expiring between the final report and the pod's exit turned an answered success
    into Failed/DeadlineExceeded."""
    answered = status(**SUCCESS_REPORTED)
    assert task_envelope("t", answered)[1]["data"]["status"] == "success"
    concluded = verdict(answered, DEADLINE)
    assert concluded == Verdict(Phase.SUCCEEDED)
    written = status(**{**SUCCESS_REPORTED, "phase": concluded.phase.value})
    assert task_envelope("t", written)[1]["data"]["status"] == "success"


@pytest.mark.parametrize(("wire", "stage"), [
    ({"phase": "Failed", "reason": "Cancelled", "message": "cancelled"}, "cancelled"),  # was "scheduling"
    ({"phase": "Failed", "reason": "InvalidSpec", "message": "x"}, "failed"),
    ({"phase": "Pending", "reason": "Queued"}, "queued"),
    ({"phase": "Pending"}, "scheduling"),
    ({"phase": "Failed", "reason": "Cancelled", "stage": "training"}, "training"),  # the trainer's word stays
])
def test_a_training_that_ended_before_its_trainer_ran_does_not_read_as_waiting(wire: dict[str, Any], stage: str
                                                                               ) -> None:
    assert display_stage(status(**wire)) == stage
