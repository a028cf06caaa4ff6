"""The SQLite layout shared by the trainer's local sink and the API's local backend (one machine, no cluster).

A row per task holds its spec and its status as JSON. Status writes are JSON merge patches applied by
SQLite itself (``json_patch`` implements RFC 7396), the same semantics as the Kubernetes status
subresource, so the trainer reports identically in both modes. WAL mode lets the API read while trainers
write. The local backend's sweeps keep a row each in ``sweeps`` and one row per trial in ``trials``, whose
primary key (sweep, number) is what makes a trial number exist at most once, whatever restarts
(:func:`insert_trial` writes the trial and its task in one transaction).
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
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id    TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT '{}',
    cancelled   INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    sweep_id    TEXT NOT NULL,
    number      INTEGER NOT NULL,
    task_id     TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    parameters  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (sweep_id, number)
);
"""

# ``updated_at`` is also the task's version (event ids, "changed since"): strictly increasing in commit order
# across every writer, since SQLite runs one write transaction at a time and each takes max + 1 µs.
_NEXT_VERSION = "max(?, coalesce((SELECT max(updated_at) FROM tasks), 0) + 0.000001)"
_INSERT = ("INSERT OR IGNORE INTO tasks (task_id, name, spec, status, created_at, updated_at) "  # noqa: S608
           f"VALUES (?, ?, ?, ?, ?, {_NEXT_VERSION})")
_SWEEP_VERSION = "max(?, coalesce((SELECT max(updated_at) FROM sweeps), 0) + 0.000001)"


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the state database in WAL mode with a busy timeout for concurrent writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


def insert_task(conn: sqlite3.Connection, task_id: str, name: str, spec: dict[str, Any],
                status: dict[str, Any] | None = None) -> None:
    """Record a new task with ``status`` (empty by default); an existing task id is left as it is (idempotent)."""
    now = time.time()
    conn.execute(_INSERT, (task_id, name, json.dumps(spec), json.dumps(status or {}), now, now))


def started_unfinished(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(task id, trainer pid) of every task whose trainer was started and has no verdict yet."""
    rows = conn.execute("SELECT task_id, pid FROM tasks WHERE pid IS NOT NULL "
                        "AND json_extract(status, '$.phase') NOT IN ('Succeeded', 'Failed')").fetchall()
    return [(task_id, int(pid)) for task_id, pid in rows]


def queued(conn: sqlite3.Connection, limit: int) -> list[tuple[str, str, str]]:
    """(task id, name, spec JSON) of the oldest ``limit`` tasks waiting for a trainer (Pending, none started)."""
    rows = conn.execute("SELECT task_id, name, spec FROM tasks WHERE json_extract(status, '$.phase') = 'Pending' "
                        "AND pid IS NULL ORDER BY created_at, rowid LIMIT ?", (limit,)).fetchall()
    return [(task_id, name, spec) for task_id, name, spec in rows]


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


#: A sweep's row: (sweep id, name, spec, status, cancelled, created at, updated at), spec and status as dicts.
SweepRow = tuple[str, str, dict[str, Any], dict[str, Any], bool, float, float]
#: A trial's row with its task's status (None once retention deleted the task): (number, task id, name,
#: parameters, status).
TrialRow = tuple[int, str, str, dict[str, Any], dict[str, Any] | None]
_SWEEP_COLUMNS = "sweep_id, name, spec, status, cancelled, created_at, updated_at"


def _sweep_row(row: tuple[Any, ...]) -> SweepRow:
    sweep_id, name, spec, status, cancelled, created_at, updated_at = row
    return sweep_id, name, dict(json.loads(spec)), dict(json.loads(status)), bool(cancelled), created_at, updated_at


def insert_sweep(conn: sqlite3.Connection, sweep_id: str, name: str, spec: dict[str, Any]) -> bool:
    """Record a new sweep with an empty status; False, writing nothing, when a sweep has that name already."""
    now = time.time()
    try:
        conn.execute(f"INSERT INTO sweeps (sweep_id, name, spec, created_at, updated_at) "  # noqa: S608
                     f"VALUES (?, ?, ?, ?, {_SWEEP_VERSION})", (sweep_id, name, json.dumps(spec), now, now))
    except sqlite3.IntegrityError:
        return False
    return True


def read_sweep(conn: sqlite3.Connection, sweep_id: str) -> SweepRow | None:
    """One sweep, or None."""
    row = conn.execute(f"SELECT {_SWEEP_COLUMNS} FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone()  # noqa: S608
    return None if row is None else _sweep_row(row)


def read_sweeps(conn: sqlite3.Connection, *, unfinished: bool = False) -> list[SweepRow]:
    """Every sweep (only those not Succeeded or Failed with ``unfinished``), newest first."""
    where = "WHERE coalesce(json_extract(status, '$.phase'), '') NOT IN ('Succeeded', 'Failed')" if unfinished else ""
    rows = conn.execute(f"SELECT {_SWEEP_COLUMNS} FROM sweeps {where} "  # noqa: S608
                        "ORDER BY created_at DESC, rowid DESC").fetchall()
    return [_sweep_row(row) for row in rows]


def write_sweep_status(conn: sqlite3.Connection, sweep_id: str, status: dict[str, Any]) -> bool:
    """Replace a sweep's status (its only writer is the local backend's step); the version moves only when the
    status changes. True when it changed."""
    text = json.dumps(status, sort_keys=True, allow_nan=False)
    cursor = conn.execute(f"UPDATE sweeps SET status = ?, updated_at = {_SWEEP_VERSION} "  # noqa: S608
                          "WHERE sweep_id = ? AND status IS NOT ?", (text, time.time(), sweep_id, text))
    return cursor.rowcount > 0


def cancel_sweep(conn: sqlite3.Connection, sweep_id: str) -> bool:
    """Mark a sweep cancelled unless it is over (its next step cancels its unfinished trials); False when there
    is no such sweep."""
    cursor = conn.execute(f"UPDATE sweeps SET cancelled = 1, updated_at = {_SWEEP_VERSION} "  # noqa: S608
                          "WHERE sweep_id = ? AND NOT cancelled AND coalesce(json_extract(status, '$.phase'), '') "
                          "NOT IN ('Succeeded', 'Failed')", (time.time(), sweep_id))
    return cursor.rowcount > 0 or read_sweep(conn, sweep_id) is not None


def insert_trial(conn: sqlite3.Connection, sweep_id: str, number: int, task_id: str, name: str,
                 parameters: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> bool:
    """Record trial ``number`` of a sweep and its task, both or neither (one transaction); False, writing
    nothing, when the sweep has that number already."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO trials (sweep_id, number, task_id, name, parameters, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (sweep_id, number, task_id, name, json.dumps(parameters, sort_keys=True), time.time()))
        except sqlite3.IntegrityError:
            return False
        insert_task(conn, task_id, name, spec, status)
    return True


def read_trials(conn: sqlite3.Connection, sweep_id: str) -> list[TrialRow]:
    """A sweep's trials by number, each with its task's status (None when the task was deleted)."""
    rows = conn.execute("SELECT trials.number, trials.task_id, trials.name, trials.parameters, tasks.status "
                        "FROM trials LEFT JOIN tasks ON tasks.task_id = trials.task_id "
                        "WHERE trials.sweep_id = ? ORDER BY trials.number", (sweep_id,)).fetchall()
    return [(number, task_id, name, dict(json.loads(parameters)), None if status is None else dict(json.loads(status)))
            for number, task_id, name, parameters, status in rows]
