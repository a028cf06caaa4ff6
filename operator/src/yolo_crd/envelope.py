"""The ``/task_status`` envelope of the user's spec (docs/task-status-api.md) as a pure function of a status.

Both API backends (Kubernetes and local) and the CLI render statuses through here, so the four shapes
(pending, progress, success, failure) and their messages are defined exactly once.
"""

from typing import Any, Final

from yolo_crd.outcome import TaskState, display_stage, failure, task_state
from yolo_crd.status import EpochMetrics, Stage, TrainingStatus, progress_percent

__all__ = ["MESSAGES", "TaskState", "artifacts_view", "epoch_metrics_view", "message", "task_envelope", "task_state"]

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
        "cancel_requested": "已请求取消任务",
        "reaped": "任务已结束并已被清理",
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
        "cancel_requested": "Cancel requested",
        "reaped": "Task finished and was deleted",
        "unauthenticated": "Not authenticated: a valid bearer token is required",
        "forbidden": "Not allowed",
        "unavailable": "Temporarily unavailable, retry shortly",
    },
}

def message(key: str, lang: str = "zh") -> str:
    """A user-facing message in Chinese (the spec's default) or English."""
    return MESSAGES.get(lang, MESSAGES["zh"])[key]


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


def artifacts_view(status: TrainingStatus) -> list[dict[str, Any]]:
    """``status.artifacts`` as the envelope shows them: name, uri, size and sha256."""
    return [artifact.model_dump(mode="json", exclude_none=True) for artifact in status.artifacts or []]


def _add_storage(result: dict[str, Any], status: TrainingStatus, *, success: bool) -> None:
    """Additive to the spec: the artifacts (on success), the lineage, and download progress while downloading."""
    if success and status.artifacts:
        result["artifacts"] = artifacts_view(status)
    if status.lineage is not None:
        result["lineage"] = {key: value for key, value in (("source_task", status.lineage.source_task),
                                                            ("source_name", status.lineage.source_name),
                                                            ("model", status.lineage.model),
                                                            ("sha256", status.lineage.sha256)) if value is not None}
    if not success and status.stage == Stage.DOWNLOADING and status.download is not None:
        result["download"] = {"uri": status.download.uri, "done_bytes": status.download.done_bytes,
                              "total_bytes": status.download.total_bytes, "files": status.download.files,
                              "total_files": status.download.total_files}


def _add_delivery(data: dict[str, Any], result: dict[str, Any] | None, status: TrainingStatus | None) -> None:
    """Additive to the spec: the quality gate's outcome in ``data`` (success and failure alike) and the verified
    exports in the result (or in ``data`` of a failure, whose weights and exports stay downloadable)."""
    if status is None:
        return
    if status.quality_gate is not None:
        data["quality_gate"] = {"passed": status.quality_gate.passed, "message": status.quality_gate.message}
    target = result if result is not None else data
    if status.exports:
        target["exports"] = [export.view() for export in status.exports]
    if result is None and status.artifacts:
        data["artifacts"] = artifacts_view(status)


def task_envelope(
    task_id: str, status: TrainingStatus | None, *, total_epochs_hint: int = 0, lang: str = "zh"
) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status code and JSON body that ``GET /task_status/{task_id}`` answers.

    ``total_epochs_hint`` (the spec's epochs) fills ``total_epochs`` before the trainer has reported it.
    """
    state = task_state(status)
    data: dict[str, Any] = {"task_id": task_id, "status": state.value}
    if state is TaskState.FAILURE:
        reason, error = failure(status)
        data["error"] = error or message("failure", lang)
        if reason:
            data["reason"] = reason
        _add_delivery(data, None, status)
        return 500, {"code": 1, "message": message("failure", lang), "data": data}
    if state is TaskState.PENDING:
        if status is not None and status.phase is not None:  # the operator has said why it waits
            data["stage"] = display_stage(status)
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
            "final_metrics": status.final_metrics.view(),
        }
        if status.stop_reason is not None:
            data["result"]["stop_reason"] = status.stop_reason.value
        _add_skipped(data["result"], status)
        _add_storage(data["result"], status, success=True)
        _add_delivery(data, data["result"], status)
        return 200, {"code": 0, "message": message("success", lang), "data": data}
    total = status.total_epochs or total_epochs_hint
    current = min(status.current_epoch or 0, total) if total else 0
    value = status.progress if status.progress is not None else progress_percent(current, total)
    result: dict[str, Any] = {
        "stage": display_stage(status),
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
    _add_storage(result, status, success=False)
    if status.stage == Stage.EXPORTING and status.export_progress is not None:
        result["export"] = status.export_progress.model_dump(mode="json", exclude_none=True)
    data["result"] = result
    return 200, {"code": 0, "message": message("progress", lang), "data": data}
