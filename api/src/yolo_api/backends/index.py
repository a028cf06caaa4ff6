"""An in-memory index of YoloTrainings by task id (``metadata.uid``), fed by one LIST+WATCH.

Every ``GET /task_status`` is answered from here: thousands of pollers cost the API server nothing.
Updates come from the watch thread; reads come from request handlers. Each update replaces a whole
immutable record, so a reader never sees a half-applied change.
"""

import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from yolo_api.backends import TaskRecord
from yolo_crd.names import ANNOTATION_CANCEL
from yolo_crd.status import TrainingStatus

log = logging.getLogger(__name__)


def record_from_object(obj: dict[str, Any]) -> TaskRecord | None:
    """A task record from a YoloTraining object; None (logged) for an object without a uid."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        log.warning("YoloTraining %s/%s has no uid; ignored", meta.get("namespace"), meta.get("name"))
        return None
    raw_status = obj.get("status") or {}
    try:
        status = TrainingStatus.model_validate(raw_status) if raw_status else None
    except ValidationError as exc:
        log.warning("status of %s/%s does not parse (%s); shown as pending", meta.get("namespace"),
                    meta.get("name"), exc.errors()[:3])
        status = None
    annotations = meta.get("annotations") or {}
    version = str(meta.get("resourceVersion") or "")
    return TaskRecord(version=int(version) if version.isdigit() else 0,
                      task_id=uid, name=meta.get("name", ""), namespace=meta.get("namespace"),
                      spec=dict(obj.get("spec") or {}), status=status,
                      created_at=meta.get("creationTimestamp", ""),
                      cancelled=annotations.get(ANNOTATION_CANCEL) == "true")


class TrainingIndex:
    """Task records by uid; see the module docstring."""

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.relists = 0
        self._listeners: dict[str, set[Callable[[], None]]] = {}

    def replace_all(self, objects: list[dict[str, Any]]) -> None:
        """Swap in the result of a LIST (first start or a relist after 410 Gone)."""
        records = {r.task_id: r for r in map(record_from_object, objects) if r is not None}
        with self._lock:
            self._records = records
            self.relists += 1
            listeners = [callback for group in self._listeners.values() for callback in group]
        self.ready.set()
        self._notify(listeners)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        """Apply one watch event (ADDED, MODIFIED, DELETED)."""
        record = record_from_object(obj)
        if record is None:
            return
        with self._lock:
            if event_type == "DELETED":
                self._records.pop(record.task_id, None)
            else:
                self._records[record.task_id] = record
            listeners = list(self._listeners.get(record.task_id, ()))
        self._notify(listeners)

    def subscribe(self, task_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the watch thread) whenever the task changes; returns the unsubscribe."""
        with self._lock:
            self._listeners.setdefault(task_id, set()).add(callback)

        def unsubscribe() -> None:
            with self._lock:
                group = self._listeners.get(task_id)
                if group is not None:
                    group.discard(callback)
                    if not group:
                        del self._listeners[task_id]

        return unsubscribe

    @staticmethod
    def _notify(listeners: list[Callable[[], None]]) -> None:
        for callback in listeners:
            try:
                callback()
            except Exception:  # a listener's failure must not stop the watch
                log.exception("a status listener failed")

    def get(self, task_id: str) -> TaskRecord | None:
        """One record, without locking (a dict read is atomic)."""
        return self._records.get(task_id)

    def all(self) -> list[TaskRecord]:
        """A snapshot of every record."""
        with self._lock:
            return list(self._records.values())

    def __len__(self) -> int:
        return len(self._records)
