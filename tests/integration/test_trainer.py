"""The real trainer: a few seconds of real ultralytics training on a generated dataset, reported truthfully."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from apiserver import ApiServer
from fakes import RecordingSink
from plotting import plots_drawn  # noqa: F401 - this module's trainings draw plots
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import f1_score
from yolo_io import local_store
from yolo_trainer.runner import run
from yolo_trainer.settings import TrainerSettings

pytestmark = pytest.mark.slow
SPEC_KEYS = {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}


def make_spec(data: Path, epochs: int, **hyperparameters: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec(model="yolov8n.yaml", data=str(data), epochs=epochs, imgsz=64, batch=16, gpus=0,
                            hyperparameters={"workers": 0, "seed": 0, **hyperparameters})


def settings(tmp_path: Path, **extra: Any) -> TrainerSettings:
    values = {"task_id": "task-1", "output_dir": tmp_path / "runs", "report_interval": 0.0,
              "final_report_timeout": 30.0, **extra}
    return TrainerSettings(**values)


def test_three_epochs_report_truthfully_and_best_pt_loads(dataset3: Path, tmp_path: Path) -> None:
    sink = RecordingSink()
    assert run(settings(tmp_path), make_spec(dataset3, 3), sink) == 0

    epochs = [(p["currentEpoch"], p["progress"]) for p in sink.patches if "metrics" in p and "finalMetrics" not in p]
    assert epochs == [(1, 33.3), (2, 66.7), (3, 100.0)]
    assert all(p.get("progress", 0) <= 100 for p in sink.patches)
    assert [p["stage"] for p in sink.patches if "stage" in p][:2] == ["initializing", "training"]
    final = sink.state()
    assert final["stage"] == "completed" and final["currentEpoch"] == 3 and final["totalEpochs"] == 3
    assert set(final["finalMetrics"]) == SPEC_KEYS
    metrics = final["finalMetrics"]
    assert abs(metrics["f1_score"] - f1_score(metrics["precision"], metrics["recall"])) <= 2e-4
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3] and final["stopReason"] == "epochs"
    weights, project = Path(final["weightsPath"]), Path(final["projectPath"])
    assert weights.is_absolute() and weights == project / "weights" / "best.pt"
    assert project == tmp_path / "runs" / "task-1"  # never runs/detect/...
    kinds = {a["name"]: a["kind"] for a in final["artifacts"]}
    assert kinds["best.pt"] == "weights" and kinds["results.csv"] == "metrics" and kinds["BoxPR_curve.png"] == "plot"
    assert "qualityGate" not in final and "exports" not in final  # neither was asked for

    from ultralytics import YOLO

    model = YOLO(str(weights))
    assert model.names == {0: "square", 1: "circle", 2: "triangle"}

    # a retry of a finished run that lost its best.pt (restored from a bucket without it) validates its final
    # weights instead of "resuming" a finished run, which ultralytics refuses on every retry
    weights.unlink()
    again = RecordingSink()
    assert run(settings(tmp_path), make_spec(dataset3, 3), again) == 0
    assert again.state()["stage"] == "completed" and weights.is_file()


def test_missing_model_and_dataset_fail_fast_with_the_path(dataset3: Path, tmp_path: Path) -> None:
    missing_model = tmp_path / "weights" / "missing.pt"
    sink = RecordingSink()
    spec = make_spec(dataset3, 1).model_copy(update={"model": str(missing_model)})
    started = time.monotonic()
    assert run(settings(tmp_path), spec, sink) == 2
    failure = sink.state()["trainingFailure"]
    assert sink.state()["stage"] == "failed" and failure["reason"] == "ModelNotFound"
    assert str(missing_model) in failure["message"] and "Traceback" not in failure["message"]

    sink = RecordingSink()
    missing_data = tmp_path / "nowhere" / "data.yaml"
    assert run(settings(tmp_path), make_spec(missing_data, 1), sink) == 2
    failure = sink.state()["trainingFailure"]
    assert failure["reason"] == "DatasetInvalid" and str(missing_data) in failure["message"]
    assert time.monotonic() - started < 30


def test_kubernetes_sink_survives_a_failing_status_endpoint(
    dataset3: Path, tmp_path: Path, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes import client, config

    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(str(kubeconfig)) as api:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "yolo-operator.io", "v1alpha1", "team-a", "yolotrainings",
            {"metadata": {"name": "t1"}, "spec": {"model": "yolov8n.yaml", "data": str(dataset3)}})
    api_server.emulator.fail(4, 503, method="PATCH", subresource="status")
    api_server.emulator.fail(1, 409, method="PATCH", subresource="status")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config_ = settings(tmp_path, sink="kubernetes", namespace="team-a", name="t1", report_interval=0.2,
                       task_id=created["metadata"]["uid"])
    assert run(config_, make_spec(dataset3, 2)) == 0

    writes = [w for w in api_server.emulator.writes if w.subresource == "status"]
    assert [w.status for w in writes[:5]] == [503, 503, 503, 503, 409]
    assert all(w.content_type == "application/merge-patch+json" for w in writes)
    delivered = [w.body for w in writes if w.status == 200]
    epochs = [b["status"]["currentEpoch"] for b in delivered if "currentEpoch" in b.get("status", {})]
    assert epochs == sorted(epochs) and epochs[-1] == 2
    status = api_server.emulator.get("yolotrainings", "team-a", "t1")["status"]  # type: ignore[index]
    assert status["stage"] == "completed" and set(status["finalMetrics"]) == SPEC_KEYS


def test_reports_never_land_on_another_training_of_the_same_name(
    dataset3: Path, tmp_path: Path, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug: a trainer of a deleted training (its pod still terminating) patched the new one by name."""
    from kubernetes import client, config

    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    body = {"metadata": {"name": "t2"}, "spec": {"model": "yolov8n.yaml", "data": str(dataset3)}}
    with config.new_client_from_config(str(kubeconfig)) as api:
        custom = client.CustomObjectsApi(api)
        old = custom.create_namespaced_custom_object("yolo-operator.io", "v1alpha1", "team-a", "yolotrainings", body)
        custom.delete_namespaced_custom_object("yolo-operator.io", "v1alpha1", "team-a", "yolotrainings", "t2")
        custom.create_namespaced_custom_object("yolo-operator.io", "v1alpha1", "team-a", "yolotrainings", body)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config_ = settings(tmp_path, sink="kubernetes", namespace="team-a", name="t2", task_id=old["metadata"]["uid"],
                       final_report_timeout=5.0)
    assert run(config_, make_spec(dataset3, 1)) == 3  # trained, but the result could not be reported: not a 0
    assert "status" not in api_server.emulator.get("yolotrainings", "team-a", "t2")  # type: ignore[operator]
    assert not [w for w in api_server.emulator.writes if w.subresource == "status" and w.status == 200]


def test_progress_from_results_csv_when_callbacks_cannot_run(dataset3: Path, tmp_path: Path) -> None:
    """Multi-GPU DDP runs epochs in workers without our callbacks: the launcher follows results.csv."""
    sink = RecordingSink()
    assert run(settings(tmp_path, follow_results_csv=True), make_spec(dataset3, 2), sink) == 0
    epochs = [p["currentEpoch"] for p in sink.patches if "metrics" in p and "finalMetrics" not in p]
    assert epochs in ([1, 2], [2])  # rows read in one poll are coalesced into one update
    state = sink.state()
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert state["stage"] == "completed" and set(state["finalMetrics"]) == SPEC_KEYS
    final_val = tmp_path / "runs" / "task-1" / "final-val"  # best.pt validated by the launcher, with its plots
    plots = {a["name"]: Path(a["uri"]) for a in state["artifacts"] if a["kind"] == "plot"}
    assert plots["confusion_matrix.png"] == final_val / "confusion_matrix.png"
    assert plots["val_batch0_pred.jpg"].read_bytes().startswith(b"\xff\xd8\xff") and "results.png" in plots


def _status(db: Path) -> dict[str, Any]:
    conn = local_store.connect(db)
    try:
        return local_store.read_status(conn, "resume-1") or {}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def test_killed_trainer_resumes_from_last_pt(dataset3: Path, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    command = [sys.executable, "-m", "yolo_trainer", "--model", "yolov8n.yaml", "--data", str(dataset3),
               "--epochs", "4", "--imgsz", "64", "--batch", "16", "--gpus", "0", "--hp", "workers=0",
               "--sink", "local", "--state-db", str(db), "--task-id", "resume-1", "--output-dir", str(tmp_path / "runs")]
    env = {**os.environ, "YOLO_TRAINER_REPORT_INTERVAL": "0"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _status(db).get("currentEpoch", 0) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # preemption: no chance to report anything
    first.wait()
    killed_at = _status(db)["currentEpoch"]
    assert 2 <= killed_at < 4

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    state = _status(db)
    assert state["stage"] == "completed" and state["currentEpoch"] == 4
    assert 1 <= state["resumedFromEpoch"] <= killed_at  # last.pt is saved at each epoch end
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]
