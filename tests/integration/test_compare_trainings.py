"""What the dashboard's compare view and gallery read, end to end: two real trainings finished by the local
backend compared through ``GET /tasks/compare`` and ``yoloctl compare`` (and a plot of one served inline from
its run directory), and plots served inline from a real S3 server (SeaweedFS) with the API's own credentials,
under the run's ownership check.

The S3 test writes its training's status into the local store (no training is needed to read a plot back);
the compare test trains for real, both trainings at once, one epoch each.
"""

import io
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakes import AUTH, TOKEN
from plotting import plots_drawn  # noqa: F401 - this module's trainings draw plots
from s3server import S3Server
from serving import serve
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
YOLOCTL = str(Path(sys.executable).parent / "yoloctl")
SPEC_KEYS = {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def body(dataset: Path, name: str, lr0: float) -> dict[str, Any]:
    return {"model": "yolov8n.yaml", "data": str(dataset), "epochs": 1, "imgsz": 64, "batch": 16, "gpus": 0,
            "name": name, "hyperparameters": {"workers": 0, "lr0": lr0}}


def finish(api: httpx.Client, task_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        envelope: dict[str, Any] = api.get(f"/task_status/{task_id}").json()
        if envelope["data"]["status"] in ("success", "failure"):
            return envelope
        assert time.monotonic() < deadline, envelope
        time.sleep(0.2)


def test_two_real_trainings_side_by_side(tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", poll_interval=0.2, max_parallel=2,
                           allowed_roots=[dataset3.parent, tmp_path], auth_token=TOKEN)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as api:
        ids = [api.post("/train", json=body(dataset3, name, lr0)).json()["data"]["task_id"]
               for name, lr0 in (("slow-lr", 0.001), ("fast-lr", 0.02))]
        for task_id in ids:
            assert finish(api, task_id)["data"]["status"] == "success"
        answer = api.get("/tasks/compare", params={"ids": f"{ids[1]},{ids[0]}"})
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert [task["task_id"] for task in data["tasks"]] == [ids[1], ids[0]]
        assert [task["name"] for task in data["tasks"]] == ["fast-lr", "slow-lr"]
        for task in data["tasks"]:
            assert (task["state"], task["stage"], task["complete"]) == ("success", "completed", True)
            assert set(task["final_metrics"]) == SPEC_KEYS and task["best_epoch"] == 1
            [epoch] = task["history"]  # the whole results.csv: one epoch
            assert epoch["epoch"] == 1 and {"mAP50-95", "train_box_loss", "val_box_loss"} <= set(epoch)
            assert task["params"]["epochs"] == 1 and task["params"]["data"] == str(dataset3)
        assert [task["params"]["lr0"] for task in data["tasks"]] == [0.02, 0.001]
        assert data["differing"] == ["lr0"]  # workers, model, data, epochs... are the same

        listed = api.get(f"/tasks/{ids[0]}/artifacts").json()["data"]["artifacts"]
        kinds = {item["name"]: item["kind"] for item in listed}
        assert (kinds["best.pt"], kinds["results.csv"], kinds["args.yaml"]) == ("weights", "metrics", "config")
        assert kinds["confusion_matrix.png"] == "plot", kinds  # the gallery's pictures, from the run directory
        shown = api.get(f"/tasks/{ids[0]}/artifacts/confusion_matrix.png", params={"inline": "true"})
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/png", shown.text
        assert Image.open(io.BytesIO(shown.content)).size[0] > 0

        environment = {**os.environ, "YOLO_API_TOKEN": TOKEN, "YOLO_API_URL": url, "LANG": "en_US.UTF-8"}
        done = subprocess.run([YOLOCTL, "compare", ids[0][:8], ids[1]], env=environment, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        header, *lines = done.stdout.splitlines()
        assert header.split("\t") == ["field", "differs", *ids]
        table = {line.split("\t")[0]: line.split("\t")[1:] for line in lines}
        assert table["name"] == ["", "slow-lr", "fast-lr"] and table["lr0"] == ["yes", "0.001", "0.02"]
        assert table["state"] == ["", "success", "success"] and all(table["mAP50-95"][1:])
        alone = subprocess.run([YOLOCTL, "compare", ids[0]], env=environment, capture_output=True, text=True,
                               timeout=60, check=False)
        assert alone.returncode == 2 and "compare takes 2 to 6 trainings, got 1" in alone.stderr


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


def image(kind: str) -> bytes:
    """A real image file, as ultralytics saves its plots."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buffer, format=kind)
    return buffer.getvalue()


def test_plots_in_object_storage_are_served_inline(tmp_path: Path, s3_env: S3Server) -> None:
    import hashlib

    from yolo_io import local_store

    bucket = s3_env.make_bucket(f"plots-{secrets.token_hex(4)}")
    task = str(uuid.uuid4())
    files = {"confusion_matrix.png": image("PNG"), "val_batch0_pred.jpg": image("JPEG"),
             "huge.png": image("PNG") + b"\0" * (8 * 1024 * 1024)}
    client = s3_env.client()
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=f"runs/{task}/{name}", Body=data)
    client.put_object(Bucket=bucket, Key="elsewhere/secret.png", Body=image("PNG"))

    def plot(name: str, uri: str | None = None, size: int | None = None) -> dict[str, Any]:
        data = files.get(name, b"")
        return {"name": name, "kind": "plot", "uri": uri or f"s3://{bucket}/runs/{task}/{name}",
                "size": len(data) if size is None else size, "sha256": hashlib.sha256(data).hexdigest()}

    artifacts = [plot("confusion_matrix.png"), plot("val_batch0_pred.jpg"),
                 plot("huge.png", size=100),  # a status that understates the size: the bytes read decide
                 plot("gone.png"), plot("secret.png", uri=f"s3://{bucket}/elsewhere/secret.png")]
    state = tmp_path / "state"
    conn = local_store.connect(state / "state.db")
    local_store.insert_task(conn, task, "plots", {"model": "yolov8n.yaml", "data": f"s3://{bucket}/d/data.yaml",
                                                  "epochs": 1, "output": f"s3://{bucket}/runs"})
    local_store.patch_status(conn, task, {"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL,
                                          "artifacts": artifacts})
    settings = ApiSettings(backend="local", state_dir=state, auth_token=TOKEN)
    with TestClient(create_app(settings), headers=AUTH, follow_redirects=False) as api:
        for name, media in (("confusion_matrix.png", "image/png"), ("val_batch0_pred.jpg", "image/jpeg")):
            shown = api.get(f"/tasks/{task}/artifacts/{name}", params={"inline": "true"})
            assert shown.status_code == 200, shown.text
            assert shown.content == files[name] and shown.headers["content-type"] == media
            assert shown.headers["content-disposition"] == f'inline; filename="{name}"'
            Image.open(io.BytesIO(shown.content)).verify()  # a real image, whole
        redirected = api.get(f"/tasks/{task}/artifacts/confusion_matrix.png")  # without inline: as ever, a 307
        assert redirected.status_code == 307 and redirected.headers["location"].startswith(s3_env.endpoint)
        huge = api.get(f"/tasks/{task}/artifacts/huge.png", params={"inline": "true"})
        assert huge.status_code == 422 and "more than 8388608 bytes" in huge.text
        gone = api.get(f"/tasks/{task}/artifacts/gone.png", params={"inline": "true"})
        assert gone.status_code == 404 and "no such object" in gone.json()["detail"]
        secret = api.get(f"/tasks/{task}/artifacts/secret.png", params={"inline": "true"})
        assert secret.status_code == 404 and "does not lie under this training's output" in secret.json()["detail"]
        assert s3_env.secret_key not in huge.text + gone.text + secret.text
