"""The local sink: merge-patches the task row in the embedded mode's SQLite database."""

import sqlite3
from pathlib import Path
from typing import Any

from yolo_crd import local_store
from yolo_trainer.sinks import SinkError


class LocalStatusSink:
    """Reports to ``tasks.status`` of the state database shared with the API's local backend."""

    def __init__(self, db_path: Path, task_id: str, *, name: str | None = None, spec: dict[str, Any] | None = None):
        self._conn = local_store.connect(db_path)
        self._task_id = task_id
        if spec is not None:  # a trainer started by hand registers its own task row
            local_store.insert_task(self._conn, task_id, name or task_id, spec)

    def send(self, patch: dict[str, Any]) -> None:
        """Apply the merge patch; a locked database is retryable, a missing task is not."""
        try:
            found = local_store.patch_status(self._conn, self._task_id, patch)
        except sqlite3.OperationalError as exc:
            raise SinkError(f"state database busy: {exc}", retryable=True) from exc
        if not found:
            raise SinkError(f"task {self._task_id} does not exist in the state database", retryable=False)
