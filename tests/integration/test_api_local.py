"""The local backend end to end: real trainer subprocesses behind /train and /task_status."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
SPEC_KEYS = {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}


def settings(tmp_path: Path, dataset: Path, **extra: Any) -> ApiSettings:
    values = {"backend": "local", "state_dir": tmp_path / "state", "poll_interval": 0.2,
              "allowed_roots": [dataset.parent, tmp_path], "auth_token": TOKEN, **extra}
    return ApiSettings(**values)


@pytest.fixture
def api(tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    with TestClient(create_app(settings(tmp_path, dataset3)), headers=AUTH) as client:
        yield client


def body(dataset: Path, **extra: Any) -> dict[str, Any]:
    return {"model": "yolov8n.yaml", "data": str(dataset), "epochs": 2, "imgsz": 64, "batch": 16, "gpus": 0,
            "hyperparameters": {"workers": 0}, **extra}


def poll(client: TestClient, task_id: str, timeout: float = 240) -> list[dict[str, Any]]:
    """Poll like a front end would, until a terminal state; return every envelope seen."""
    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        response = client.get(f"/task_status/{task_id}")
        envelope = response.json()
        assert response.status_code == (500 if envelope["data"]["status"] == "failure" else 200)
        seen.append(envelope)
        return envelope["data"]["status"] in ("success", "failure")

    eventually(finished, timeout=timeout, interval=0.2)
    return seen


def test_train_walks_pending_progress_success(api: TestClient, dataset3: Path) -> None:
    task_id = api.post("/train", json=body(dataset3)).json()["data"]["task_id"]
    seen = poll(api, task_id)
    states = [e["data"]["status"] for e in seen]
    assert states[0] in ("pending", "progress") and states[-1] == "success" and "progress" in states
    epochs = [e["data"]["result"]["current_epoch"] for e in seen if e["data"]["status"] == "progress"]
    assert epochs == sorted(epochs) and all(e <= 2 for e in epochs)
    result = seen[-1]["data"]["result"]
    assert set(result["final_metrics"]) == SPEC_KEYS and Path(result["weights_path"]).is_file()
    assert str(api.app.state.settings.state_dir) in result["project_path"]  # type: ignore[attr-defined]
    history = api.get(f"/tasks/{task_id}/metrics").json()["data"]["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    listed = api.get("/tasks").json()["data"]["items"]
    assert listed[0]["task_id"] == task_id and listed[0]["status"] == "success"


def test_a_missing_model_is_refused_at_submit_naming_the_file(api: TestClient, dataset3: Path, tmp_path: Path) -> None:
    missing = tmp_path / "weights" / "missing.pt"
    response = api.post("/train", json=body(dataset3, model=str(missing)))
    assert response.status_code == 422 and response.json()["code"] == 1
    (error,) = response.json()["data"]["errors"]
    assert error["loc"] == ["body", "model"] and error["msg"] == f"model file {missing} does not exist"
    assert api.get("/tasks").json()["data"]["total"] == 0  # not a task that fails minutes later


@pytest.mark.parametrize("field", ["data", "model"])
def test_paths_outside_the_allowed_roots_are_422(api: TestClient, dataset3: Path, field: str) -> None:
    bad = {"data": "../../../../etc/passwd.yaml", "model": "/etc/secret/weights.pt"}[field]
    response = api.post("/train", json=body(dataset3, **{field: bad}))
    assert response.status_code == 422 and "allowed roots" in str(response.json()["data"]["errors"])
    assert api.get("/tasks").json()["data"]["total"] == 0


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"export": ["onnx", "tensorrt"]}, "Input should be 'onnx' or 'torchscript'"),
    ({"exportTolerance": 1.5}, "less than or equal to 1"),
    ({"successCriteria": {"mAP50": 0.5, "accuracy": 0.9}}, "unknown metric(s) 'accuracy'"),
    ({"success_criteria": {"recall": 2}}, "less than or equal to 1"),
])
def test_bad_exports_and_criteria_start_nothing(api: TestClient, dataset3: Path, extra: dict[str, Any],
                                                fragment: str) -> None:
    response = api.post("/train", json=body(dataset3, **extra))
    assert response.status_code == 422 and fragment in str(response.json()["data"]["errors"])
    assert api.get("/tasks").json()["data"]["total"] == 0


def test_storage_is_refused_locally(api: TestClient, dataset3: Path) -> None:
    volumes = {"volumes": [{"name": "data", "claimName": "datasets", "mountPath": "/data"}]}
    response = api.post("/train", json={**body(dataset3), "storage": volumes})
    assert response.status_code == 422 and "kubernetes backend" in str(response.json()["data"]["errors"])


def test_queue_and_cancel(api: TestClient, dataset3: Path) -> None:
    first = api.post("/train", json=body(dataset3, epochs=50)).json()["data"]["task_id"]
    second = api.post("/train", json=body(dataset3)).json()["data"]["task_id"]
    eventually(lambda: api.get(f"/task_status/{first}").json()["data"]["status"] == "progress", timeout=60,
               interval=0.2)
    assert api.get(f"/task_status/{second}").json()["data"]["status"] == "pending"  # max_parallel = 1
    cancelled = api.delete(f"/tasks/{second}").json()
    assert cancelled["data"]["error"] == "cancelled"
    response = api.delete(f"/tasks/{first}")
    assert response.status_code == 200 and response.json()["data"]["status"] == "failure"
    final = poll(api, first, timeout=30)[-1]
    assert final["data"]["error"] == "cancelled" and final["data"]["reason"] == "Cancelled"
    third = api.post("/train", json=body(dataset3, epochs=50)).json()["data"]["task_id"]
    # the queue moved past the cancelled second task (queued before the third): it never got a trainer
    eventually(lambda: api.get(f"/task_status/{third}").json()["data"]["status"] == "progress", timeout=60,
               interval=0.2)
    assert api.get(f"/task_status/{second}").json()["data"]["error"] == "cancelled"
    assert api.get(f"/tasks/{second}/logs").status_code == 404  # no trainer ever wrote its log
    api.delete(f"/tasks/{third}")


def test_api_restart_during_a_run_reattaches(tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    config = settings(tmp_path, dataset3)
    with TestClient(create_app(config), headers=AUTH) as first:
        task_id = first.post("/train", json=body(dataset3, epochs=3)).json()["data"]["task_id"]
        eventually(lambda: first.get(f"/task_status/{task_id}").json()["data"]["status"] == "progress", timeout=60,
                   interval=0.2)
    with TestClient(create_app(config), headers=AUTH) as second:  # a new API process over the same state directory
        seen = poll(second, task_id)
    assert seen[-1]["data"]["status"] == "success"


def test_orphan_left_running_is_marked_failed_on_restart(tmp_path: Path, dataset3: Path) -> None:
    from yolo_io import local_store

    config = settings(tmp_path, dataset3)
    conn = local_store.connect(config.state_dir / "state.db")
    local_store.insert_task(conn, "orphan", "t", {"epochs": 3})
    local_store.patch_status(conn, "orphan", {"phase": "Running", "stage": "training", "currentEpoch": 1})
    conn.execute("UPDATE tasks SET pid = 999999 WHERE task_id = 'orphan'")
    with TestClient(create_app(config), headers=AUTH) as client:
        response = client.get("/task_status/orphan")
    assert response.status_code == 500 and "训练进程已中断" in response.json()["data"]["error"]


def test_a_dataset_as_people_export_it_trains_and_says_what_was_skipped(api: TestClient, tmp_path: Path) -> None:
    from yolo_trainer.synthetic import make_dataset

    data = make_dataset(tmp_path / "export", classes=2, train=16, val=8, imgsz=64)
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: circle\n")
    label = tmp_path / "export" / "labels" / "train" / "00000.txt"
    label.write_text("\ufeff" + label.read_text())  # saved by an editor that writes a byte-order mark
    broken = tmp_path / "export" / "images" / "train" / "00001.png"
    broken.write_bytes(broken.read_bytes()[:60])  # an interrupted copy
    task_id = api.post("/train", json=body(data, epochs=1)).json()["data"]["task_id"]
    final = poll(api, task_id)[-1]
    assert final["data"]["status"] == "success", final
    skipped = final["data"]["result"]["dataset_skipped"]
    assert skipped["images"] == 1 and skipped["labels"] == 1 and str(broken) in skipped["reasons"][0]
