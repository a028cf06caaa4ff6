"""The local-mode SQLite contract: status writes are RFC 7396 merge patches, as on the status subresource."""

from pathlib import Path

from yolo_crd import local_store


def test_merge_patch_semantics(tmp_path: Path) -> None:
    conn = local_store.connect(tmp_path / "state.db")
    local_store.insert_task(conn, "t1", "demo", {"model": "m.yaml", "data": "d.yaml"})
    assert local_store.read_status(conn, "t1") == {}
    assert local_store.patch_status(conn, "t1", {"stage": "training", "metrics": {"epoch": 1, "mAP50": 0.1}})
    assert local_store.patch_status(conn, "t1", {"metrics": {"epoch": 2}, "error": None, "history": [1, 2]})
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
