"""The local backend as a user meets it, with fast stand-in trainers (tests/standin.py: the real reporter and
SQLite sink) behind the real API: states that never contradict each other, a killed trainer that is named
as such with its log, GPUs that exist, bare weights names left to the trainer when it may download them,
and inputs that cannot train refused at submit."""

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN
from standin import standin_python
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings


def make_client(tmp_path: Path, **extra: Any) -> TestClient:
    values: dict[str, Any] = {"backend": "local", "state_dir": tmp_path / "state", "auth_token": TOKEN,
                              "poll_interval": 0.05, "local_gpus": 0, "allowed_roots": [tmp_path],
                              "trainer_python": standin_python(tmp_path), **extra}
    return TestClient(create_app(ApiSettings(**values)), headers=AUTH)


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("STANDIN_EPOCH_SECONDS", "0.1")
    (tmp_path / "d.yaml").write_text("train: x\n")
    with make_client(tmp_path) as client:
        yield client


def body(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"model": "yolov8n.yaml", "data": str(tmp_path / "d.yaml"), "epochs": 3, **extra}


def envelope(api: TestClient, task_id: str) -> dict[str, Any]:
    return dict(api.get(f"/task_status/{task_id}").json())


def test_pending_right_after_submit_and_never_running_after_success(api: TestClient, tmp_path: Path) -> None:
    task_id = api.post("/train", json=body(tmp_path)).json()["data"]["task_id"]
    first = envelope(api, task_id)
    assert first["data"]["status"] == "pending" and "result" not in first["data"]  # not "progress, stage queued"
    rows: list[tuple[str, str]] = []

    def finished() -> bool:
        row = api.get("/tasks").json()["data"]["items"][0]
        rows.append((row["status"], row["phase"]))
        return row["status"] == "success"

    eventually(finished, timeout=60, interval=0.01)
    for _ in range(20):  # the moments after success, before the backend has reaped the trainer
        row = api.get("/tasks").json()["data"]["items"][0]
        rows.append((row["status"], row["phase"]))
    expected = {"pending": "Pending", "progress": "Running", "success": "Succeeded"}
    assert all(phase == expected[status] for status, phase in rows), set(rows)


def test_the_time_budget_reaches_the_user_as_the_stop_reason(api: TestClient, tmp_path: Path) -> None:
    task_id = api.post("/train", json=body(tmp_path, hyperparameters={"time": 0.5})).json()["data"]["task_id"]
    done = eventually(lambda: (e := envelope(api, task_id))["data"]["status"] == "success" and e, timeout=60)
    assert done["data"]["result"]["stop_reason"] == "time_limit"
    assert api.get(f"/tasks/{task_id}").json()["data"]["stop_reason"] == "time_limit"


def test_a_killed_trainer_is_named_with_its_signal_and_its_log(api: TestClient, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_HANG_AT", "1")
    task_id = api.post("/train", json=body(tmp_path)).json()["data"]["task_id"]
    eventually(lambda: envelope(api, task_id)["data"].get("result", {}).get("current_epoch") == 1, timeout=60)
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
        (pid,) = conn.execute("SELECT pid FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    os.killpg(pid, signal.SIGKILL)  # e.g. the kernel's OOM killer
    final = eventually(lambda: (e := envelope(api, task_id))["data"]["status"] == "failure" and e, timeout=30)
    error = final["data"]["error"]
    assert "killed by signal SIGKILL (9)" in error and "epoch 1/3" not in error
    assert str(tmp_path / "state" / "logs" / f"{task_id}.log") in error and f"GET /tasks/{task_id}/logs" in error
    logs = api.get(f"/tasks/{task_id}/logs")
    assert logs.status_code == 200 and "epoch 1/3" in logs.text
    assert TestClient(api.app).get(f"/tasks/{task_id}/logs").status_code == 401  # same auth as the task


def test_gpus_default_to_the_cpu_without_cuda_and_asking_for_one_is_a_clear_422(api: TestClient,
                                                                                tmp_path: Path) -> None:
    task_id = api.post("/train", json=body(tmp_path)).json()["data"]["task_id"]
    assert api.get(f"/tasks/{task_id}").json()["data"]["gpus"] == 0
    response = api.post("/train", json=body(tmp_path, gpus=1))
    assert response.status_code == 422
    assert "this machine has no CUDA device" in str(response.json()["data"]["errors"])


def test_gpus_default_to_one_where_there_is_cuda(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("train: x\n")
    with make_client(tmp_path, local_gpus=1) as client:
        task_id = client.post("/train", json=body(tmp_path, epochs=1)).json()["data"]["task_id"]
        assert client.get(f"/tasks/{task_id}").json()["data"]["gpus"] == 1


def test_a_bare_weights_name_is_left_for_the_trainer_to_download_when_downloads_are_allowed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d.yaml").write_text("train: x\n")
    monkeypatch.setenv("YOLO_TRAINER_ALLOW_DOWNLOADS", "true")  # the trainer's own variable, read by the API too
    with make_client(tmp_path) as client:
        task_id = client.post("/train", json=body(tmp_path, model="yolov8n.pt")).json()["data"]["task_id"]
        assert client.get(f"/tasks/{task_id}").json()["data"]["model"] == "yolov8n.pt"  # not ./yolov8n.pt


def test_a_bare_weights_name_without_downloads_is_refused_at_submit(api: TestClient, tmp_path: Path) -> None:
    response = api.post("/train", json=body(tmp_path, model="yolov8n.pt"))
    assert response.status_code == 422
    (error,) = response.json()["data"]["errors"]
    assert error["loc"] == ["body", "model"] and "YOLO_TRAINER_ALLOW_DOWNLOADS=true" in error["msg"]


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("data", "missing/data.yaml", "dataset file {tmp}/missing/data.yaml does not exist"),
    ("data", "broken.yaml", "dataset file {tmp}/broken.yaml is not valid YAML: line 2, column 4: expected ',' or ']'"),
    ("data", "scalar.yaml", "is not a YAML mapping"),
    ("model", "yolov99z.yaml", "yolov99z.yaml is neither a file nor an architecture ultralytics ships"),
    ("model", "weights/best.pt", "model file {tmp}/weights/best.pt does not exist"),
    ("model", "custom/model.yaml", "model file {tmp}/custom/model.yaml does not exist"),
])
def test_inputs_that_cannot_train_are_refused_at_submit_naming_the_field(
        api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: str,
        fragment: str) -> None:
    (tmp_path / "broken.yaml").write_text("train: [images/train\nval: x\n")
    (tmp_path / "scalar.yaml").write_text("just text\n")
    monkeypatch.chdir(tmp_path)
    response = api.post("/train", json=body(tmp_path, **{field: value}))
    assert response.status_code == 422, response.text
    (error,) = response.json()["data"]["errors"]
    assert error["loc"] == ["body", field] and fragment.format(tmp=tmp_path) in error["msg"]
    assert api.get("/tasks").json()["data"]["total"] == 0


def test_architectures_ultralytics_ships_and_files_that_exist_are_accepted(api: TestClient, tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"weights")
    for model in ("yolov8n.yaml", "yolo11s.yaml", "yolov8x-seg.yaml", "yolov5nu.yaml", "yolov3-tinyu.yaml",
                  str(tmp_path / "w.pt")):  # the u names: ultralytics renames them to their YOLOv3/v5 files
        assert api.post("/train", json=body(tmp_path, model=model)).status_code == 200, model


def test_the_allowed_roots_setting_is_named_when_a_path_is_outside(api: TestClient, tmp_path: Path) -> None:
    response = api.post("/train", json=body(tmp_path, data="/etc/passwd.yaml"))
    assert response.status_code == 422 and "YOLO_API_ALLOWED_ROOTS" in str(response.json()["data"]["errors"])


def test_the_dataset_yaml_a_run_recorded_downloads_and_no_other_path_does(api: TestClient, tmp_path: Path) -> None:
    task_id = api.post("/train", json=body(tmp_path, epochs=1)).json()["data"]["task_id"]
    eventually(lambda: envelope(api, task_id)["data"]["status"] == "success", timeout=60)
    (tmp_path / "other.yaml").write_text("secret: 1\n")  # inside the allowed roots, but not this run's dataset
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:  # what the trainer records (yolo_trainer.artifacts)
        artifacts = [{"name": "data.yaml", "uri": str(tmp_path / "d.yaml"), "size": 9, "sha256": "0" * 64},
                     {"name": "other.yaml", "uri": str(tmp_path / "other.yaml"), "size": 10, "sha256": "0" * 64}]
        conn.execute("UPDATE tasks SET status = json_set(status, '$.artifacts', json(?)) WHERE task_id = ?",
                     (json.dumps(artifacts), task_id))
    data = api.get(f"/tasks/{task_id}/artifacts/data.yaml")
    assert data.status_code == 200 and data.content == b"train: x\n"
    assert api.get(f"/tasks/{task_id}/artifacts/other.yaml").status_code == 404
    assert api.get(f"/tasks/{task_id}/artifacts/nope.yaml").status_code == 404


def test_stopping_the_api_never_names_a_trainer_that_already_finished(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "d.yaml").write_text("train: x\n")
    with make_client(tmp_path, poll_interval=60) as client:  # the scheduler will not reap it before the stop
        task_id = client.post("/train", json=body(tmp_path, epochs=1)).json()["data"]["task_id"]
        eventually(lambda: envelope(client, task_id)["data"]["status"] == "success", timeout=60)
        with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
            (pid,) = conn.execute("SELECT pid FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        eventually(lambda: Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z")  # exited
        caplog.set_level("WARNING", logger="yolo_api.backends.local")
    assert "keep running" not in caplog.text


def test_fields_only_a_cluster_acts_on_are_refused_locally_not_ignored(api: TestClient, tmp_path: Path) -> None:
    """POST /train takes every spec field; locally ``suspend: true`` would train at once and a deadline would
    never end anything, so they are refused, each named, before anything starts."""
    response = api.post("/train", json=body(tmp_path, suspend=True, resources={"limits": {"memory": "8Gi"}},
                                            active_deadline_seconds=60))
    assert response.status_code == 422
    fields = {error["loc"][-1] for error in response.json()["data"]["errors"]}
    assert fields == {"suspend", "resources", "active_deadline_seconds"}
    assert api.get("/tasks").json()["data"]["total"] == 0
    assert api.post("/train", json=body(tmp_path, suspend=False, ttl_seconds_after_finished=60)).status_code == 200
