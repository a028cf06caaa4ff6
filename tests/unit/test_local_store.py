"""The local-mode SQLite contract: status writes are RFC 7396 merge patches, as on the status subresource."""

import math
import sqlite3
from pathlib import Path

import pytest

from yolo_io import local_store
from yolo_trainer.sinks import SinkError
from yolo_trainer.sinks.local import LocalStatusSink


def test_merge_patch_semantics(tmp_path: Path) -> None:
    conn = local_store.connect(tmp_path / "state.db")
    local_store.insert_task(conn, "t1", "demo", {"model": "m.yaml", "data": "d.yaml"})
    assert local_store.read_status(conn, "t1") == {}
    assert local_store.patch_status(conn, "t1", {"stage": "training", "metrics": {"epoch": 1, "mAP50": 0.1}})
    assert local_store.patch_status(conn, "t1", {"metrics": {"epoch": 2}, "trainingFailure": None, "history": [1, 2]})
    assert local_store.read_status(conn, "t1") == {"stage": "training", "metrics": {"epoch": 2, "mAP50": 0.1},
                                                   "history": [1, 2]}
    assert not local_store.patch_status(conn, "missing", {"stage": "training"})
    assert local_store.read_status(conn, "missing") is None


def test_insert_is_idempotent(tmp_path: Path) -> None:
    conn = local_store.connect(tmp_path / "state.db")
    local_store.insert_task(conn, "t1", "demo", {"a": 1})
    local_store.patch_status(conn, "t1", {"stage": "training"})
    local_store.insert_task(conn, "t1", "demo", {"a": 2})
    assert local_store.read_status(conn, "t1") == {"stage": "training"}
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_local_sink_retries_only_a_busy_or_locked_database(tmp_path: Path) -> None:
    """The bug: every OperationalError was retried forever, "malformed JSON" and "no such table" included."""
    sink = LocalStatusSink(tmp_path / "state.db", "t1", name="demo", spec={"model": "m.yaml", "data": "d.yaml"})
    sink._conn.execute("PRAGMA busy_timeout = 50")
    holder = local_store.connect(tmp_path / "state.db")
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    with pytest.raises(SinkError, match="busy") as busy:
        sink.send({"stage": "training"})
    assert busy.value.retryable
    holder.execute("ROLLBACK")
    sink.send({"stage": "training"})
    with pytest.raises(SinkError) as not_json:
        sink.send({"progress": math.nan})
    assert not not_json.value.retryable
    holder.execute("DROP TABLE tasks")
    with pytest.raises(SinkError, match="no such table") as broken:
        sink.send({"stage": "training"})
    assert not broken.value.retryable


def test_the_store_refuses_a_second_trial_with_a_number_and_writes_no_task(tmp_path: Path) -> None:
    conn = local_store.connect(tmp_path / "state.db")
    assert local_store.insert_sweep(conn, "s1", "s", {"a": 1})
    assert not local_store.insert_sweep(conn, "s2", "s", {"a": 2})  # the name is taken
    assert local_store.insert_trial(conn, "s1", 0, "t1", "s-000", {"lr0": 0.1}, {"epochs": 1}, {"phase": "Pending"})
    assert not local_store.insert_trial(conn, "s1", 0, "t2", "s-000", {"lr0": 0.2}, {"epochs": 1}, {})
    assert local_store.read_status(conn, "t2") is None
    assert local_store.read_trials(conn, "s1") == [(0, "t1", "s-000", {"lr0": 0.1}, {"phase": "Pending"})]


def test_a_state_db_from_before_sweeps_gets_their_tables_and_keeps_its_tasks(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "state.db") as old:  # the schema before sweeps: tasks only
        old.execute("CREATE TABLE tasks (task_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, "
                    "status TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL, updated_at REAL NOT NULL, "
                    "pid INTEGER)")
        old.execute("INSERT INTO tasks VALUES ('t1', 'old', '{}', '{\"phase\": \"Succeeded\"}', 1, 1, NULL)")
    conn = local_store.connect(tmp_path / "state.db")
    assert local_store.read_status(conn, "t1") == {"phase": "Succeeded"}
    assert local_store.read_sweeps(conn) == [] and local_store.read_trials(conn, "s1") == []
    assert local_store.insert_sweep(conn, "s1", "s", {"maxTrials": 1})
    assert local_store.write_sweep_status(conn, "s1", {"phase": "Running"})
    assert not local_store.write_sweep_status(conn, "s1", {"phase": "Running"})  # unchanged: the version stays
    assert [row[3] for row in local_store.read_sweeps(conn, unfinished=True)] == [{"phase": "Running"}]
