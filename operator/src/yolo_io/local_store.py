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
CREATE TABLE IF NOT EXISTS reaped (
    task_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    deleted_at  TEXT NOT NULL,
    ttl_seconds REAL,
    reaped_at   REAL NOT NULL
);
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


class FinalPhaseError(ValueError):
    """A patch would change the phase of a finished task (the CRD's CEL rule refuses the same on a cluster)."""


#: A finished task's phase never changes, a task whose trainer reported its success (stage completed with
#: final metrics that pass the quality gate) never becomes Failed, and one whose final report missed its quality
#: gate never becomes Succeeded: the same rules as the CRD's transition rules on ``status``. Checked in
#: the UPDATE itself, so a trainer process writing its final report cannot slip between a read and a write.
_PHASE_STAYS = ("((coalesce(json_extract(status, '$.phase'), '') NOT IN ('Succeeded', 'Failed') "
                "OR json_type(:patch, '$.phase') IS NULL "
                "OR json_extract(:patch, '$.phase') IS json_extract(status, '$.phase')) "
                "AND NOT (json_extract(:patch, '$.phase') IS 'Failed' "
                "AND coalesce(json_extract(status, '$.phase'), '') IS NOT 'Failed' "
                "AND json_extract(status, '$.stage') IS 'completed' "
                "AND json_type(status, '$.finalMetrics') IS 'object' "
                "AND json_type(status, '$.qualityGate.passed') IS NOT 'false') "
                "AND NOT (json_extract(:patch, '$.phase') IS 'Succeeded' "
                "AND json_extract(status, '$.stage') IS 'completed' "
                "AND json_type(status, '$.finalMetrics') IS 'object' "
                "AND json_type(status, '$.qualityGate.passed') IS 'false'))")


def patch_status(conn: sqlite3.Connection, task_id: str, patch: dict[str, Any]) -> bool:
    """Merge-patch a task's status (RFC 7396); return False when the task does not exist.

    Raises :class:`FinalPhaseError`, writing nothing, when the patch would change a finished task's phase.
    """
    cursor = conn.execute(
        f"UPDATE tasks SET status = json_patch(status, :patch), updated_at = {_NEXT_VERSION.replace('?', ':now')} "  # noqa: S608
        f"WHERE task_id = :task_id AND {_PHASE_STAYS}",
        {"patch": json.dumps(patch, allow_nan=False), "now": time.time(), "task_id": task_id},
    )
    if cursor.rowcount > 0:
        return True
    current = read_status(conn, task_id)
    if current is None:
        return False
    if current.get("phase") not in ("Succeeded", "Failed"):
        raise FinalPhaseError(f"task {task_id}: the trainer's final report decided it; its phase cannot be "
                              f"{patch.get('phase')}")
    raise FinalPhaseError(f"task {task_id} is {current.get('phase')}: a finished training cannot change phase")


def read_status(conn: sqlite3.Connection, task_id: str) -> dict[str, Any] | None:
    """Return a task's status dict, or None when the task does not exist."""
    row = conn.execute("SELECT status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def finished_tasks(conn: sqlite3.Connection) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(task id, name, spec, status) of every finished task."""
    rows = conn.execute(
        "SELECT task_id, name, spec, status FROM tasks "
        "WHERE json_extract(status, '$.phase') IN ('Succeeded', 'Failed')").fetchall()
    return [(task_id, name, dict(json.loads(spec)), dict(json.loads(status))) for task_id, name, spec, status in rows]


def reap(conn: sqlite3.Connection, task_id: str, name: str, finished_at: str, deleted_at: str,
         ttl_seconds: float | None) -> None:
    """Delete a finished task's row and keep its tombstone (both or neither)."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO reaped (task_id, name, finished_at, deleted_at, ttl_seconds, reaped_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (task_id, name, finished_at, deleted_at, ttl_seconds, time.time()))
        conn.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,))


def read_reaped(conn: sqlite3.Connection, task_id: str, since: float) -> tuple[str, str, str, float | None] | None:
    """(name, finished at, deleted at, ttl) of a task reaped after ``since`` (a Unix time), else None."""
    row = conn.execute("SELECT name, finished_at, deleted_at, ttl_seconds FROM reaped WHERE task_id = ? "
                       "AND reaped_at >= ?", (task_id, since)).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def forget_reaped(conn: sqlite3.Connection, before: float) -> None:
    """Drop the tombstones of tasks reaped before ``before`` (a Unix time)."""
    conn.execute("DELETE FROM reaped WHERE reaped_at < ?", (before,))
