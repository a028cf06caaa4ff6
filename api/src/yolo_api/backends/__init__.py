"""Task backends: where trainings are created and where their status is read from.

``local`` runs trainer subprocesses and keeps state in SQLite (one machine, no cluster); ``kubernetes``
creates YoloTraining resources and answers from a watch-fed in-memory index. Routes only see this protocol.
"""

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from yolo_crd.envelope import TaskState, task_envelope, task_state
from yolo_crd.outcome import display_stage, failure
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus


@dataclass(frozen=True)
class TaskRecord:
    """One training as the API sees it."""

    task_id: str
    name: str
    namespace: str | None
    spec: dict[str, Any]
    status: TrainingStatus | None
    created_at: str
    cancelled: bool = False
    # per-instance cache; init=False so that dataclasses.replace() never carries a stale body over
    _rendered: dict[str, tuple[int, bytes]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def state(self) -> TaskState:
        """pending, progress, success or failure; a cancellation not yet reflected in status is a failure."""
        state = task_state(self.status)
        if self.cancelled and state not in (TaskState.SUCCESS, TaskState.FAILURE):
            return TaskState.FAILURE
        return state

    def envelope(self, lang: str = "zh") -> tuple[int, dict[str, Any]]:
        """The ``/task_status`` answer for this task."""
        status = self.status
        if self.cancelled and self.state() is TaskState.FAILURE and task_state(status) is not TaskState.FAILURE:
            status = (status or TrainingStatus()).model_copy(
                update={"phase": Phase.FAILED, "reason": Reason.CANCELLED.value, "message": "cancelled"})
        return task_envelope(self.task_id, status, total_epochs_hint=int(self.spec.get("epochs", 0)), lang=lang)

    def rendered(self, lang: str = "zh") -> tuple[int, bytes]:
        """The envelope serialised once per record and language: polls of an unchanged task cost no work."""
        cached = self._rendered.get(lang)
        if cached is None:
            code, body = self.envelope(lang)
            cached = self._rendered[lang] = (code, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        return cached

    def summary(self) -> dict[str, Any]:
        """One row of ``GET /tasks``."""
        status = self.status or TrainingStatus()
        metrics = status.metrics
        return {
            "task_id": self.task_id, "name": self.name, "namespace": self.namespace, "status": self.state().value,
            "stage": display_stage(status),
            "phase": status.phase.value if status.phase else None,
            "current_epoch": status.current_epoch or 0, "total_epochs": status.total_epochs or self.spec.get("epochs"),
            "progress": status.progress or 0.0, "mAP50": metrics.map50 if metrics else None,
            "mAP50-95": metrics.map50_95 if metrics else None, "created_at": self.created_at,
            "reason": failure(status)[0] if self.state() is TaskState.FAILURE else status.reason,
            "model": self.spec.get("model"), "data": self.spec.get("data"),
        }


class TaskBackend(Protocol):
    """What the routes need from a backend. Reads must be cheap: they serve every poll."""

    def start(self) -> None:
        """Begin background work (watches, schedulers); called once at application start-up."""

    def stop(self) -> None:
        """End background work; called once at shutdown."""

    def ready(self) -> bool:
        """True once the backend can answer reads correctly (e.g. the first list is in)."""

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        """Create a training; raises ApiError for invalid input."""

    def get(self, task_id: str) -> TaskRecord | None:
        """One task, or None when no such task exists."""

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None) -> tuple[list[TaskRecord], int]:
        """Tasks newest first (only those in ``namespaces`` unless it is None), and the total count."""

    def namespaces(self) -> set[str]:
        """The namespaces that hold tasks (empty for a backend without namespaces)."""

    def namespace_for(self, requested: str | None) -> str | None:
        """The namespace a new task would be created in; raises ApiError if it is not served."""

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Stop a training; None when no such task exists."""
