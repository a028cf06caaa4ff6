"""The ``/task_status`` envelope of ``shared/spec/task_status_api.zh.md`` as a pure function of a status.

Both API backends (Kubernetes and local) and the CLI render statuses through here, so the four shapes
(pending, progress, success, failure) and their messages are defined exactly once.
"""

from enum import StrEnum
from typing import Any, Final

from yolo_crd.status import EpochMetrics, Phase, Stage, TrainingStatus, progress_percent


class TaskState(StrEnum):
    """The four states of the spec's ``data.status``."""

    PENDING = "pending"
    PROGRESS = "progress"
    SUCCESS = "success"
    FAILURE = "failure"


MESSAGES: Final[dict[str, dict[str, str]]] = {
    "zh": {
        "pending": "任务等待中",
        "progress": "正在训练",
        "success": "训练完成",
        "failure": "训练失败",
        "not_found": "任务不存在",
        "submitted": "任务已提交",
        "invalid": "请求参数无效",
        "cancelled": "任务已取消",
        "unauthenticated": "未认证：需要有效的 Bearer 令牌",
        "forbidden": "无权执行此操作",
        "unavailable": "服务暂不可用，请稍后重试",
    },
    "en": {
        "pending": "Task is pending",
        "progress": "Training in progress",
        "success": "Training completed",
        "failure": "Training failed",
        "not_found": "Task not found",
        "submitted": "Task submitted",
        "invalid": "Invalid request",
        "cancelled": "Task cancelled",
        "unauthenticated": "Not authenticated: a valid bearer token is required",
        "forbidden": "Not allowed",
        "unavailable": "Temporarily unavailable, retry shortly",
    },
}

_RUNNING_STAGES: Final = frozenset({Stage.INITIALIZING, Stage.TRAINING, Stage.FINALIZING})


def message(key: str, lang: str = "zh") -> str:
    """A user-facing message in Chinese (the spec's default) or English."""
    return MESSAGES.get(lang, MESSAGES["zh"])[key]


def task_state(status: TrainingStatus | None) -> TaskState:
    """Classify a status into the spec's four states; a completed run without final metrics is a failure."""
    if status is None:
        return TaskState.PENDING
    if status.phase == Phase.FAILED or status.stage == Stage.FAILED:
        return TaskState.FAILURE
    if status.stage == Stage.COMPLETED or status.phase == Phase.SUCCEEDED:
        return TaskState.SUCCESS if status.final_metrics is not None else TaskState.FAILURE
    if status.stage in _RUNNING_STAGES or status.phase == Phase.RUNNING:
        return TaskState.PROGRESS
    return TaskState.PENDING


def _failure_error(status: TrainingStatus | None, lang: str) -> str:
    if status is None:
        return message("failure", lang)
    if status.error:
        return status.error
    if status.final_metrics is None and (status.stage == Stage.COMPLETED or status.phase == Phase.SUCCEEDED):
        return "training ended without reporting final metrics"
    return status.reason or message("failure", lang)


def epoch_metrics_view(metrics: EpochMetrics) -> dict[str, Any]:
    """Per-epoch metrics in the envelope's naming: the spec's metric keys and snake_case losses."""
    view = {
        "epoch": metrics.epoch,
        "precision": metrics.precision,
        "recall": metrics.recall,
        "mAP50": metrics.map50,
        "mAP50-95": metrics.map50_95,
        "f1_score": metrics.f1_score,
        "train_box_loss": metrics.train_box_loss,
        "train_cls_loss": metrics.train_cls_loss,
        "train_dfl_loss": metrics.train_dfl_loss,
        "val_box_loss": metrics.val_box_loss,
        "val_cls_loss": metrics.val_cls_loss,
        "val_dfl_loss": metrics.val_dfl_loss,
    }
    return {key: value for key, value in view.items() if value is not None}


def _add_skipped(result: dict[str, Any], status: TrainingStatus) -> None:
    """Additive to the spec: what the dataset check found that training skips (undecodable images)."""
    if status.dataset_skipped is not None:
        result["dataset_skipped"] = status.dataset_skipped.wire()


def task_envelope(
    task_id: str, status: TrainingStatus | None, *, total_epochs_hint: int = 0, lang: str = "zh"
) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status code and JSON body that ``GET /task_status/{task_id}`` answers.

    ``total_epochs_hint`` (the spec's epochs) fills ``total_epochs`` before the trainer has reported it.
    """
    state = task_state(status)
    data: dict[str, Any] = {"task_id": task_id, "status": state.value}
    if state is TaskState.FAILURE:
        data["error"] = _failure_error(status, lang)
        if status is not None and status.reason:
            data["reason"] = status.reason
        return 500, {"code": 1, "message": message("failure", lang), "data": data}
    if state is TaskState.PENDING:
        if status is not None and status.stage is not None:
            data["stage"] = status.stage.value
        if status is not None and status.message:
            data["detail"] = status.message
        return 200, {"code": 0, "message": message("pending", lang), "data": data}
    assert status is not None  # progress and success need a status
    if state is TaskState.SUCCESS:
        assert status.final_metrics is not None
        data["result"] = {
            "status": "success",
            "task_id": task_id,
            "weights_path": status.weights_path or "",
            "project_path": status.project_path or "",
            "final_metrics": status.final_metrics.wire(),
        }
        if status.stop_reason is not None:
            data["result"]["stop_reason"] = status.stop_reason.value
        _add_skipped(data["result"], status)
        return 200, {"code": 0, "message": message("success", lang), "data": data}
    total = status.total_epochs or total_epochs_hint
    current = min(status.current_epoch or 0, total) if total else 0
    value = status.progress if status.progress is not None else progress_percent(current, total)
    result: dict[str, Any] = {
        "stage": (status.stage or Stage.INITIALIZING).value,
        "current_epoch": current,
        "total_epochs": total,
        "progress": f"{value:.1f}%",
        "progress_value": value,
    }
    if status.metrics is not None:
        result["metrics"] = epoch_metrics_view(status.metrics)
    if status.resumed_from_epoch is not None:
        result["resumed_from_epoch"] = status.resumed_from_epoch
    _add_skipped(result, status)
    data["result"] = result
    return 200, {"code": 0, "message": message("progress", lang), "data": data}
