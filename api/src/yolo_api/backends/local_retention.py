"""The local backend's retention (``--retain-days``): finished tasks are deleted, row, run and log alike.

The rule is the cluster's (:mod:`yolo_crd.retention`): a task is due that long after its completion time.
What is deleted is what the API made for it: its row, its run directory under ``<state-dir>/runs`` (weights
included) and its log; a tombstone stays, so its task id answers 404 saying it was reaped, for the API's
``reaped_retention_seconds``. Datasets and outputs elsewhere (object storage) are never touched.
"""

import datetime as dt
import logging
import shutil
import sqlite3
import time
from pathlib import Path

from yolo_crd.retention import Reaped, due
from yolo_crd.status import TrainingStatus, utc_now
from yolo_io import local_store

log = logging.getLogger(__name__)


def reap_rows(conn: sqlite3.Connection, retain_seconds: float | None, now: dt.datetime,
              remember_seconds: float) -> list[str]:
    """Replace the row of every task whose retention (its own ``ttlSecondsAfterFinished``, else
    ``retain_seconds``) has passed at ``now`` by its tombstone, and forget tombstones older than
    ``remember_seconds``; returns the reaped ids. Only SQLite: the files go in :func:`remove_files`."""
    reaped = []
    for task_id, name, spec, raw in local_store.finished_tasks(conn):
        own = spec.get("ttlSecondsAfterFinished")
        ttl = float(own) if isinstance(own, int) else retain_seconds
        status = TrainingStatus.model_validate(raw)
        if due(ttl, status, now):
            local_store.reap(conn, task_id, name, status.completion_time or "", utc_now(), ttl)
            reaped.append(task_id)
    local_store.forget_reaped(conn, time.time() - remember_seconds)
    return reaped


def remove_files(task_ids: list[str], runs_dir: Path, logs_dir: Path) -> None:
    """Delete the run directories (weights included) and logs of reaped tasks (no lock needed: their rows
    are gone, nothing reads or writes these files any more)."""
    for task_id in task_ids:
        run = (runs_dir / task_id).resolve()
        if run.is_relative_to(runs_dir.resolve()) and run.is_dir():
            shutil.rmtree(run)
        (logs_dir / f"{task_id}.log").unlink(missing_ok=True)
    if task_ids:
        log.info("deleted %d finished task(s) whose retention passed (ttlSecondsAfterFinished or --retain-days): %s",
                 len(task_ids), ", ".join(task_ids))


def tombstone(conn: sqlite3.Connection, task_id: str, remember_seconds: float) -> Reaped | None:
    """The tombstone of a task reaped within ``remember_seconds``, else None."""
    found = local_store.read_reaped(conn, task_id, time.time() - remember_seconds)
    if found is None:
        return None
    name, finished_at, deleted_at, ttl = found
    return Reaped(task_id, name, None, finished_at, deleted_at, ttl)
