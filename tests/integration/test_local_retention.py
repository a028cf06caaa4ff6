"""Local retention (``--retain-days``, a task's own ``ttl_seconds_after_finished``): rows, runs and logs of
finished tasks are deleted once their time is up, and their task ids answer 404 saying so."""

from pathlib import Path

from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.local import LocalBackend
from yolo_api.settings import ApiSettings
from yolo_io import local_store

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def finished(backend: LocalBackend, task_id: str, when: str, spec: dict[str, object] | None = None) -> None:
    local_store.insert_task(backend._conn, task_id, task_id, {"epochs": 1, **(spec or {})})
    local_store.patch_status(backend._conn, task_id, {
        "stage": "completed", "finalMetrics": FINAL, "phase": "Succeeded", "completionTime": when})
    (backend.runs_dir / task_id / "weights").mkdir(parents=True)
    (backend.runs_dir / task_id / "weights" / "best.pt").write_bytes(b"weights")
    backend.log_path(task_id).write_text("trained\n")


def test_retain_days_deletes_rows_runs_and_logs_and_says_so(tmp_path: Path) -> None:
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, local_gpus=0,
                           retain_days=1)
    app = create_app(settings)
    with TestClient(app, headers=AUTH) as http:
        backend = app.state.backend
        assert isinstance(backend, LocalBackend)
        finished(backend, "old", "2026-01-01T00:00:00Z")
        finished(backend, "recent", "2099-01-01T00:00:00Z")
        finished(backend, "own-ttl", "2026-01-01T00:00:00Z", {"ttlSecondsAfterFinished": 10**9})
        local_store.insert_task(backend._conn, "running", "running", {"epochs": 1})
        local_store.patch_status(backend._conn, "running", {"phase": "Running", "stage": "training"})
        backend.retire()  # (the scheduler's own once-a-minute pass may have been first)
        assert backend.get("old") is None
        # the files go right after the row, outside the backend's lock (maybe by the scheduler's own pass)
        eventually(lambda: not (backend.runs_dir / "old").exists() and not backend.log_path("old").exists())
        assert (backend.runs_dir / "recent" / "weights" / "best.pt").exists()
        gone = http.get("/task_status/old", headers={"Accept-Language": "en"})
        assert gone.status_code == 404 and gone.json()["message"] == "Task finished and was deleted"
        assert gone.json()["data"]["reason"] == "Reaped" and "2026-01-01T00:00:00Z" in gone.json()["detail"]
        assert http.get("/task_status/never").json()["message"] == "任务不存在"
        for kept in ("recent", "own-ttl", "running"):
            assert http.get(f"/task_status/{kept}").status_code in (200, 500), kept
        assert [row["task_id"] for row in http.get("/tasks").json()["data"]["items"]] == \
            ["running", "own-ttl", "recent"]


def test_without_retention_nothing_is_deleted(tmp_path: Path) -> None:
    backend = LocalBackend(ApiSettings(backend="local", state_dir=tmp_path / "state", local_gpus=0))
    backend.runs_dir.mkdir(parents=True)
    backend.logs_dir.mkdir(parents=True)
    finished(backend, "old", "2000-01-01T00:00:00Z")
    assert list(backend.retire()) == [] and backend.get("old") is not None
