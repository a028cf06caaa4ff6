"""Task backends: where trainings are created and where their status is read from.

``local`` runs trainer subprocesses and keeps state in SQLite (one machine, no cluster); ``kubernetes``
creates YoloTraining resources and answers from a watch-fed in-memory index. Routes only see this protocol.
"""

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from yolo_crd.envelope import TaskState, artifacts_view, task_envelope, task_state
from yolo_crd.outcome import display_stage, failure, final
from yolo_crd.retention import Reaped
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import EpochMetrics, Phase, Reason, TrainingStatus


@dataclass(frozen=True)
class History:
    """A training's per-epoch metrics; ``complete`` when every epoch is there (not a bounded sample)."""

    epochs: list[EpochMetrics]
    complete: bool


@dataclass(frozen=True)
class TaskRecord:
    """One training as the API sees it."""

    task_id: str
    name: str
    namespace: str | None
    spec: dict[str, Any]
    status: TrainingStatus | None
    created_at: str
    #: a cancel was asked for (the annotation); the verdict, not this, says whether it took effect
    cancelled: bool = False
    #: increases with every change, across all tasks of a backend (local: the row's commit order; Kubernetes:
    #: resourceVersion): the id of its Server-Sent Events and the cursor of "what changed since"
    version: int = 0
    # per-instance cache; init=False so that dataclasses.replace() never carries a stale body over
    _rendered: dict[str, tuple[int, bytes]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def state(self) -> TaskState:
        """pending, progress, success or failure, as the one verdict says (:func:`yolo_crd.outcome.task_state`).

        A cancel that was asked for but not yet concluded is not a failure yet: the trainer may already have
        stored its weights, and then the verdict is a success.
        """
        return task_state(self.status)

    def final(self) -> bool:
        """Whether this task's outcome can no longer change (streams end, pollers stop, only then)."""
        return final(self.status)

    def envelope(self, lang: str = "zh") -> tuple[int, dict[str, Any]]:
        """The ``/task_status`` answer for this task."""
        return task_envelope(self.task_id, self.status, total_epochs_hint=int(self.spec.get("epochs", 0)), lang=lang)

    def rendered(self, lang: str = "zh") -> tuple[int, bytes]:
        """The envelope serialised once per record and language: polls of an unchanged task cost no work."""
        cached = self._rendered.get(lang)
        if cached is None:
            code, body = self.envelope(lang)
            cached = self._rendered[lang] = (code, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        return cached

    def is_cancelled(self) -> bool:
        """Failed because a user cancelled it (not because training failed)."""
        status = self.status
        return self.state() is TaskState.FAILURE and status is not None and status.reason == Reason.CANCELLED.value

    def display_state(self) -> str:
        """The spec's state, except that a cancelled training reads ``cancelled`` (the filter of /tasks)."""
        return "cancelled" if self.is_cancelled() else self.state().value

    def summary(self) -> dict[str, Any]:
        """One row of ``GET /tasks``: enough for a table and a detail header (no per-epoch history).

        ``status`` is the spec's state (the envelope's ``data.status``); ``state`` is :meth:`display_state`, the
        same but ``cancelled`` for a cancelled training.
        """
        status = self.status or TrainingStatus()
        metrics = status.metrics
        state = self.state()
        progress = 100.0 if state is TaskState.SUCCESS else status.progress or 0.0
        _, envelope = self.envelope()
        return {
            "task_id": self.task_id, "name": self.name, "namespace": self.namespace, "status": state.value,
            "state": self.display_state(), "stage": display_stage(status),
            # the phase as the state implies it: a success is never shown as still Running
            "phase": _PHASES[state].value,
            "current_epoch": status.current_epoch or 0, "total_epochs": status.total_epochs or self.spec.get("epochs"),
            "progress": progress, "mAP50": metrics.map50 if metrics else None,
            "mAP50-95": metrics.map50_95 if metrics else None, "created_at": self.created_at,
            "started_at": status.start_time, "finished_at": status.completion_time,
            "reason": "Cancelled" if self.is_cancelled() else failure(status)[0] if state is TaskState.FAILURE
            else status.reason,
            "error": envelope["data"].get("error"),
            "stop_reason": status.stop_reason.value if status.stop_reason else None,
            "final_metrics": status.final_metrics.view() if status.final_metrics else None,
            "weights_path": status.weights_path, "project_path": status.project_path,
            "dataset_skipped": status.dataset_skipped.wire() if status.dataset_skipped else None,
            "artifacts": artifacts_view(status), "output": self.spec.get("output"),
            "lineage": status.lineage.wire() if status.lineage else None,
            "model": self.spec.get("model"), "data": self.spec.get("data"), "epochs": self.spec.get("epochs"),
            "imgsz": self.spec.get("imgsz"), "batch": self.spec.get("batch"), "device": self.spec.get("device"),
            "gpus": self.spec.get("gpus"), "hyperparameters": self.spec.get("hyperparameters") or {},
            "version": self.version,
        }


_PHASES: dict[TaskState, Phase] = {TaskState.PENDING: Phase.PENDING, TaskState.PROGRESS: Phase.RUNNING,
                                   TaskState.SUCCESS: Phase.SUCCEEDED, TaskState.FAILURE: Phase.FAILED}


def filter_state(records: Iterable[TaskRecord], state: str | None) -> list[TaskRecord]:
    """The records in ``state`` (pending, progress, success, failure or cancelled; None: all)."""
    if state is None:
        return list(records)
    if state == "failure":  # cancelled trainings are failures too, as the spec's envelope says
        return [record for record in records if record.state() is TaskState.FAILURE]
    return [record for record in records if record.display_state() == state]


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
        """One task from what the backend holds (never a remote call: every poll comes here)."""

    def lookup(self, task_id: str) -> TaskRecord | None:
        """One task after a miss of :meth:`get`, asking the source of truth if needed; None when unknown."""

    def history(self, task_id: str) -> History:
        """The task's per-epoch metrics, as complete as the backend can have them (read on demand)."""

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Tasks whose ``version`` is above ``version``, oldest change first (the list's event stream)."""

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None,
             state: str | None = None) -> tuple[list[TaskRecord], int]:
        """Tasks newest first (only those in ``namespaces`` unless it is None, and in ``state`` unless it is None:
        see :func:`filter_state`), and the total count."""

    def latest_version(self) -> int:
        """The highest ``version`` of any task (0 when there is none): where a new list stream starts."""

    def default_gpus(self) -> int:
        """GPUs a training gets when its request names neither ``gpus`` nor ``device``."""

    def logs(self, task_id: str, max_bytes: int) -> str | None:
        """The end of a task's trainer log (at most ``max_bytes``); None when there is none (yet)."""

    def namespaces(self) -> set[str]:
        """The namespaces that hold tasks (empty for a backend without namespaces)."""

    def namespace_for(self, requested: str | None) -> str | None:
        """The namespace a new task would be created in; raises ApiError if it is not served."""

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Stop a training; None when no such task exists."""

    def reaped(self, task_id: str) -> Reaped | None:
        """The tombstone of a finished task that was deleted (its retention passed), while it is remembered."""

    def artifact_file(self, task_id: str, uri: str) -> Path | None:
        """The local file of an artifact that is not in object storage, if this API can read it; else None."""
