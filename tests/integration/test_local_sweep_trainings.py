"""A local sweep with real trainings (yolov8n.yaml, 1 epoch, imgsz 64, a synthetic dataset) behind the real API:
its trials are ordinary local tasks with their own ``/task_status``, an API restarted mid-sweep carries on from
the state directory without losing or repeating a trial, and the sweep ends with the best trial."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.local import LocalBackend
from yolo_api.settings import ApiSettings
from yolo_crd.sweep import YoloSweepSpec
from yolo_io import local_store

pytestmark = pytest.mark.slow


def start(config: ApiSettings) -> tuple[TestClient, LocalBackend]:
    """An API process over the state directory (the sweep routes are another module's: the backend directly)."""
    backend = LocalBackend(config)
    return TestClient(create_app(config, backend=backend), headers=AUTH), backend


def envelope(client: TestClient, task_id: str) -> dict[str, Any]:
    return dict(client.get(f"/task_status/{task_id}").json()["data"])


def test_a_sweep_of_real_trainings_survives_an_api_restart_and_ends_with_the_best_trial(
        tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    config = ApiSettings(backend="local", state_dir=tmp_path / "state", poll_interval=0.2, auth_token=TOKEN,
                         allowed_roots=[dataset3.parent, tmp_path], local_gpus=0, max_parallel=2)
    spec = YoloSweepSpec.model_validate({
        "template": {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 1, "imgsz": 64, "batch": 16,
                     "gpus": 0, "hyperparameters": {"workers": 0}},
        "parameters": {"lr0": {"values": [0.01, 0.02]}}, "algorithm": "grid",
        "objective": {"metric": "mAP50-95"}, "maxTrials": 2, "parallelism": 1})
    first, backend = start(config)
    with first:
        sweep = backend.submit_sweep(spec, "tune", None)
        (trial,) = backend.sweep_trials(sweep.sweep_id)  # parallelism 1: one trial until it ends
        assert trial["name"] == "tune-000" and trial["parameters"] == {"lr0": 0.01}
        eventually(lambda: envelope(first, trial["task_id"])["status"] == "progress", timeout=60, interval=0.2)
    second, backend = start(config)  # a new API process over the same state directory, mid-trial
    with second:
        done = eventually(lambda: (s := backend.get_sweep(sweep.sweep_id)) is not None and s.final() and s,
                          timeout=240, interval=0.2)
        rows = sorted(backend.sweep_trials(sweep.sweep_id), key=lambda row: row["trial"])
        finals = {row["trial"]: envelope(second, row["task_id"]) for row in rows}
    assert done.state() == "succeeded" and done.status.counts is not None and done.status.counts.succeeded == 2
    assert [(row["name"], row["parameters"]) for row in rows] == [("tune-000", {"lr0": 0.01}),
                                                                 ("tune-001", {"lr0": 0.02})]
    assert rows[0]["task_id"] == trial["task_id"]  # the trial that ran across the restart is the same task
    conn = local_store.connect(config.state_dir / "state.db")
    assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 2  # nothing duplicated, nothing lost
    conn.close()
    objectives = {number: data["result"]["final_metrics"]["mAP50-95"] for number, data in finals.items()}
    assert all(data["status"] == "success" for data in finals.values())
    best = max(objectives, key=lambda number: (objectives[number], -number))  # ties: the lower number
    assert done.status.best is not None and done.status.best.trial == best
    assert done.status.best.objective == pytest.approx(objectives[best])
    assert done.status.best.weights and done.status.best.weights.endswith("best.pt")
