"""The SQLite layout shared by the trainer's local sink and the API's local backend (one machine, no cluster).

A row per task holds its spec and its status as JSON. Status writes are JSON merge patches applied by
SQLite itself (``json_patch`` implements RFC 7396), the same semantics as the Kubernetes status
subresource, so the trainer reports identically in both modes. WAL mode lets the API read while trainers
write.
"""

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    pid         INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at DESC);
CREATE INDEX IF NOT EXISTS tasks_updated_at ON tasks (updated_at);
"""

# ``updated_at`` is also the task's version (event ids, "changed since"): strictly increasing in commit order
# across every writer, since SQLite runs one write transaction at a time and each takes max + 1 µs.
_NEXT_VERSION = "max(?, coalesce((SELECT max(updated_at) FROM tasks), 0) + 0.000001)"
_INSERT = ("INSERT OR IGNORE INTO tasks (task_id, name, spec, status, created_at, updated_at) "  # noqa: S608
           f"VALUES (?, ?, ?, '{{}}', ?, {_NEXT_VERSION})")


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the state database in WAL mode with a busy timeout for concurrent writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def insert_task(conn: sqlite3.Connection, task_id: str, name: str, spec: dict[str, Any]) -> None:
    """Record a new task with an empty status; an existing task id is left as it is (idempotent)."""
    now = time.time()
    conn.execute(
        _INSERT,
        (task_id, name, json.dumps(spec), now, now),
    )


def patch_status(conn: sqlite3.Connection, task_id: str, patch: dict[str, Any]) -> bool:
    """Merge-patch a task's status (RFC 7396); return False when the task does not exist."""
    cursor = conn.execute(
        f"UPDATE tasks SET status = json_patch(status, ?), updated_at = {_NEXT_VERSION} WHERE task_id = ?",  # noqa: S608
        (json.dumps(patch, allow_nan=False), time.time(), task_id),
    )
    return cursor.rowcount > 0


def read_status(conn: sqlite3.Connection, task_id: str) -> dict[str, Any] | None:
    """Return a task's status dict, or None when the task does not exist."""
    row = conn.execute("SELECT status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))
