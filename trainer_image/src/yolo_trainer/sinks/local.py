"""The local sink: merge-patches the task row in the embedded mode's SQLite database.

Only a busy or locked database is worth retrying (another process holds the write lock); any other
SQLite error (malformed JSON, a corrupt file, a full disk) would fail the same way forever.
"""

import sqlite3
from pathlib import Path
from typing import Any

from yolo_io import local_store
from yolo_trainer.sinks import SinkError


class LocalStatusSink:
    """Reports to ``tasks.status`` of the state database shared with the API's local backend."""

    def __init__(self, db_path: Path, task_id: str, *, name: str | None = None, spec: dict[str, Any] | None = None):
        self._conn = local_store.connect(db_path)
        self._task_id = task_id
        if spec is not None:  # a trainer started by hand registers its own task row
            local_store.insert_task(self._conn, task_id, name or task_id, spec)

    def send(self, patch: dict[str, Any]) -> None:
        """Apply the merge patch; a busy or locked database is retryable, anything else is not."""
        try:
            found = local_store.patch_status(self._conn, self._task_id, patch)
        except ValueError as exc:  # not JSON (a NaN that escaped json_safe): the same patch fails forever
            raise SinkError(f"status patch is not valid JSON: {exc}", retryable=False) from exc
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            busy = code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            raise SinkError(f"state database {'busy' if busy else 'error'}: {exc}", retryable=busy) from exc
        if not found:
            raise SinkError(f"task {self._task_id} does not exist in the state database", retryable=False)
