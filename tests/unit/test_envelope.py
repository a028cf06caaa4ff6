"""The /task_status envelope: the spec's four examples, field by field, and the edge cases around them."""

import math
from typing import Any

import pytest

from yolo_crd.envelope import TaskState, task_envelope, task_state
from yolo_crd.status import FinalMetrics, TrainingStatus

TASK = "e125f230-d11f-4edc-9e37-1c58a9cedf55"

# The four examples of the user's task-status spec (summarised in docs/task-status-api.md), verbatim.
SPEC_PENDING = {"code": 0, "message": "任务等待中", "data": {"task_id": TASK, "status": "pending"}}
SPEC_PROGRESS = {"code": 0, "message": "正在训练", "data": {"task_id": TASK, "status": "progress", "result": {
    "stage": "training", "current_epoch": 5, "total_epochs": 20, "progress": "25.0%"}}}
SPEC_SUCCESS = {"code": 0, "message": "训练完成", "data": {"task_id": TASK, "status": "success", "result": {
    "status": "success", "task_id": TASK, "weights_path": "runs/train/1234567/weights/best.pt",
    "project_path": "runs/train/1234567", "final_metrics": {
        "mAP50": 0.3317, "mAP50-95": 0.2322, "precision": 0.9957, "recall": 0.3333, "f1_score": 0.4995}}}}
SPEC_FAILURE = {"code": 1, "message": "训练失败", "data": {"task_id": TASK, "status": "failure", "error": "模型文件不存在"}}


def assert_conforms(ours: Any, spec: Any, path: str = "$") -> None:
    """Every field of the spec's example exists in ours with the same type (and nesting); extras allowed."""
    if isinstance(spec, dict):
        assert isinstance(ours, dict), path
        for key, value in spec.items():
            assert key in ours, f"{path}.{key} missing"
            assert_conforms(ours[key], value, f"{path}.{key}")
    else:
        assert type(ours) is type(spec), f"{path}: {type(ours).__name__} is not {type(spec).__name__}"


def test_pending_matches_the_spec_exactly() -> None:
    assert task_envelope(TASK, None) == (200, SPEC_PENDING)
    assert task_envelope(TASK, TrainingStatus()) == (200, SPEC_PENDING)


def test_progress_matches_the_spec() -> None:
    status = TrainingStatus(phase="Running", stage="training", current_epoch=5, total_epochs=20, progress=25.0)
    code, body = task_envelope(TASK, status)
    assert code == 200
    assert_conforms(body, SPEC_PROGRESS)
    assert body["data"]["result"] == {**SPEC_PROGRESS["data"]["result"], "progress_value": 25.0}  # type: ignore[index]
    assert {k: body[k] for k in ("code", "message")} == {"code": 0, "message": "正在训练"}


def test_success_matches_the_spec_exactly() -> None:
    status = TrainingStatus.model_validate({
        "phase": "Succeeded", "stage": "completed", "currentEpoch": 20, "totalEpochs": 20, "progress": 100,
        "weightsPath": "runs/train/1234567/weights/best.pt", "projectPath": "runs/train/1234567",
        "finalMetrics": SPEC_SUCCESS["data"]["result"]["final_metrics"]})  # type: ignore[index]
    assert task_envelope(TASK, status) == (200, SPEC_SUCCESS)


def test_failure_matches_the_spec() -> None:
    status = TrainingStatus.model_validate({"phase": "Failed", "stage": "failed", "trainingFailure": {
        "reason": "ModelNotFound", "message": "模型文件不存在"}})
    code, body = task_envelope(TASK, status)
    assert code == 500
    assert_conforms(body, SPEC_FAILURE)
    assert body["data"]["error"] == "模型文件不存在" and body["data"]["reason"] == "ModelNotFound"
    assert "result" not in body["data"]


@pytest.mark.parametrize(("operator", "reason", "error"), [
    ({"reason": "BackoffLimitExceeded", "message": "the trainer failed 3 retries"}, "DatasetInvalid", "no labels"),
    ({"reason": "InvalidInput", "message": "the trainer rejected its input"}, "DatasetInvalid", "no labels"),
    ({"reason": "DeadlineExceeded", "message": "ran longer than 60s"}, "DeadlineExceeded", "ran longer than 60s"),
    ({"reason": "Cancelled", "message": "cancelled"}, "Cancelled", "cancelled"),
    ({"reason": "OOMKilled", "message": "killed"}, "OOMKilled", "killed"),
])
def test_the_failure_tells_the_true_reason(operator: dict[str, str], reason: str, error: str) -> None:
    """The trainer's own report outlives the Job controller's consequences; an outside cause keeps its own."""
    status = TrainingStatus.model_validate({"phase": "Failed", "stage": "failed", **operator,
                                            "trainingFailure": {"reason": "DatasetInvalid", "message": "no labels"}})
    _, body = task_envelope(TASK, status)
    assert (body["data"]["reason"], body["data"]["error"]) == (reason, error)


@pytest.mark.parametrize(("wire", "state"), [
    ({}, TaskState.PENDING),
    ({"phase": "Pending", "reason": "Unschedulable", "message": "0/3 nodes are available"}, TaskState.PENDING),
    ({"phase": "Pending", "reason": "Queued"}, TaskState.PENDING),
    ({"stage": "queued"}, TaskState.PENDING),  # written by an older operator: read as no stage
    ({"phase": "Running"}, TaskState.PROGRESS),
    ({"stage": "initializing"}, TaskState.PROGRESS),
    ({"phase": "Pending", "stage": "training"}, TaskState.PROGRESS),  # preempted: never back to pending
    ({"stage": "finalizing", "currentEpoch": 3, "totalEpochs": 3}, TaskState.PROGRESS),
    ({"stage": "failed", "trainingFailure": {"reason": "TrainingError", "message": "x"}}, TaskState.PROGRESS),
    ({"phase": "Failed", "reason": "OOMKilled", "message": "killed"}, TaskState.FAILURE),
    ({"phase": "Succeeded"}, TaskState.FAILURE),  # completed without final metrics is not a success
    ({"stage": "completed"}, TaskState.PROGRESS),  # no final metrics: not over until the verdict says so
        ({"stage": "completed", "phase": "Failed", "reason": "TrainingError"}, TaskState.FAILURE),
])
def test_states(wire: dict[str, Any], state: TaskState) -> None:
    assert task_state(TrainingStatus.model_validate(wire)) is state


def test_pending_says_why_it_waits() -> None:
    status = TrainingStatus.model_validate({"phase": "Pending", "reason": "Unschedulable",
                                            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu"})
    _, body = task_envelope(TASK, status)
    assert body["data"]["stage"] == "scheduling" and "Insufficient" in body["data"]["detail"]
    _, body = task_envelope(TASK, TrainingStatus.model_validate({"phase": "Pending", "reason": "Queued"}))
    assert body["data"]["stage"] == "queued"


def test_a_diverged_run_shows_null_metrics_rather_than_none_at_all() -> None:
    final = FinalMetrics.from_validation(math.nan, 0.1, 0.5, math.inf)
    status = TrainingStatus(stage="completed", final_metrics=final)
    _, body = task_envelope(TASK, status)
    assert body["data"]["result"]["final_metrics"] == {"mAP50": None, "mAP50-95": 0.1, "precision": 0.5,
                                                       "recall": None, "f1_score": None}


def test_progress_before_the_first_epoch_uses_the_spec_total() -> None:
    _, body = task_envelope(TASK, TrainingStatus(stage="initializing"), total_epochs_hint=30)
    assert body["data"]["result"] | {} == {"stage": "initializing", "current_epoch": 0, "total_epochs": 30,
                                           "progress": "0.0%", "progress_value": 0.0}


def test_failure_without_an_error_message_still_has_a_string_error() -> None:
    _, body = task_envelope(TASK, TrainingStatus(phase="Failed", reason="DeadlineExceeded"))
    assert body["data"]["error"] == "DeadlineExceeded"
    _, body = task_envelope(TASK, TrainingStatus(phase="Succeeded"))
    assert "final metrics" in body["data"]["error"]


def test_english_messages_on_request() -> None:
    _, body = task_envelope(TASK, None, lang="en")
    assert body["message"] == "Task is pending"


def test_success_says_why_training_stopped_and_what_the_dataset_check_skipped() -> None:
    status = TrainingStatus.model_validate({
        "phase": "Succeeded", "stage": "completed", "stopReason": "time_limit", "weightsPath": "/w.pt",
        "datasetSkipped": {"images": 2, "labels": 1, "reasons": ["/d/a.jpg: truncated"]},
        "finalMetrics": SPEC_SUCCESS["data"]["result"]["final_metrics"]})  # type: ignore[index]
    _, body = task_envelope(TASK, status)
    result = body["data"]["result"]
    assert result["stop_reason"] == "time_limit"  # additive to the spec's success shape
    assert result["dataset_skipped"] == {"images": 2, "labels": 1, "reasons": ["/d/a.jpg: truncated"]}
    running = TrainingStatus.model_validate({"stage": "training", "datasetSkipped": {"images": 2, "labels": 1}})
    _, body = task_envelope(TASK, running)
    assert body["data"]["result"]["dataset_skipped"]["images"] == 2
