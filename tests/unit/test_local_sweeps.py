"""The local backend's sweep step, with trial statuses written into the local store as trainers would (no
training, no scheduler thread): grid order, the parallelism and budget limits, trial numbers unique across an
API restart, the median rule ending a trial EarlyStopped with its metrics, a cancel, and what submit refuses."""

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from yolo_api.backends.local import LocalBackend
from yolo_api.errors import ApiError
from yolo_api.settings import ApiSettings
from yolo_crd.outcome import RunEnd
from yolo_crd.sweep import YoloSweepSpec
from yolo_io import local_store


def make_backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(ApiSettings(backend="local", state_dir=tmp_path / "state", local_gpus=0,
                                    allowed_roots=[tmp_path]))


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    (tmp_path / "d.yaml").write_text("train: x\n")
    return make_backend(tmp_path)


def sweep_spec(tmp_path: Path, **extra: Any) -> YoloSweepSpec:
    return YoloSweepSpec.model_validate({
        "template": {"model": "yolov8n.yaml", "data": str(tmp_path / "d.yaml"), "epochs": 3, "imgsz": 64, "gpus": 0},
        "parameters": {"lr0": {"values": [0.01, 0.02]}, "imgsz": {"values": [32, 64]}},
        "algorithm": "grid", "objective": {"metric": "mAP50-95"}, "maxTrials": 4, "parallelism": 2, **extra})


def trials(backend: LocalBackend, sweep_id: str) -> list[dict[str, Any]]:
    return sorted(backend.sweep_trials(sweep_id), key=lambda row: row["trial"])


def unfinished(backend: LocalBackend, sweep_id: str) -> list[int]:
    return [row["trial"] for row in trials(backend, sweep_id) if row["state"] in ("pending", "running")]


def report_epoch(backend: LocalBackend, task_id: str, epoch: int, value: float) -> None:
    """What a trainer writes after an epoch: stage, the epoch's metrics, the history so far."""
    history = [{"epoch": e, "mAP50-95": value} for e in range(1, epoch + 1)]
    local_store.patch_status(backend._conn, task_id, {"stage": "training", "metrics": history[-1],
                                                      "history": history})


def succeed(backend: LocalBackend, task_id: str, value: float) -> None:
    """The trainer's final report, then the verdict its process's exit gives."""
    report_epoch(backend, task_id, 3, value)
    local_store.patch_status(backend._conn, task_id, {"stage": "completed", "weightsPath": f"/runs/{task_id}/best.pt",
                                                      "finalMetrics": {"mAP50": value, "mAP50-95": value}})
    assert backend.conclude(task_id, RunEnd(True)) is not None


def test_a_grid_makes_its_trials_in_order_within_parallelism_and_ends_with_the_best(backend: LocalBackend,
                                                                                    tmp_path: Path) -> None:
    sweep = backend.submit_sweep(sweep_spec(tmp_path), "grid", None)
    grid = [dict(zip(["imgsz", "lr0"], combo, strict=True)) for combo in itertools.product([32, 64], [0.01, 0.02])]
    assert [row["parameters"] for row in trials(backend, sweep.sweep_id)] == grid[:2]
    assert backend.step_sweep(sweep.sweep_id) is not None and unfinished(backend, sweep.sweep_id) == [0, 1]
    values = {0: 0.2, 1: 0.5, 2: 0.3, 3: 0.4}
    for number in range(4):  # one finishes, the next takes its place: never more than 2 unfinished
        row = trials(backend, sweep.sweep_id)[number]
        task = backend.get(row["task_id"])
        assert task is not None and task.name == f"grid-{number:03d}" and task.spec["imgsz"] == grid[number]["imgsz"]
        assert task.spec["hyperparameters"] == {"lr0": grid[number]["lr0"]} and task.spec["model"] == "yolov8n.yaml"
        succeed(backend, row["task_id"], values[number])
        backend.step_sweep(sweep.sweep_id)
        assert len(unfinished(backend, sweep.sweep_id)) <= 2
    done = backend.get_sweep(sweep.sweep_id)
    assert done is not None and done.state() == "succeeded" and done.status.done == "4/4"
    assert done.status.best is not None and done.status.best.trial == 1 and done.status.best.objective == 0.5
    assert done.status.best.weights == f"/runs/{trials(backend, sweep.sweep_id)[1]['task_id']}/best.pt"
    assert done.status.start_time and done.status.completion_time
    assert [row["trial"] for row in backend.sweep_trials(sweep.sweep_id)] == [1, 3, 2, 0]  # best objective first
    assert backend.step_sweep(sweep.sweep_id) is None and len(trials(backend, sweep.sweep_id)) == 4


def test_never_more_trials_than_max_trials(backend: LocalBackend, tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path, algorithm="random", maxTrials=3, parallelism=5,
                      parameters={"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}})
    sweep = backend.submit_sweep(spec, None, None)
    assert sweep.name.startswith("sweep-") and len(trials(backend, sweep.sweep_id)) == 3
    for row in trials(backend, sweep.sweep_id):
        succeed(backend, row["task_id"], 0.1)
        backend.step_sweep(sweep.sweep_id)
    assert len(trials(backend, sweep.sweep_id)) == 3
    done = backend.cancel_sweep(sweep.sweep_id)  # too late: the sweep is over, and stays as it ended
    assert done is not None and done.state() == "succeeded" and not done.cancelled


def test_trial_numbers_stay_unique_across_an_api_restart(backend: LocalBackend, tmp_path: Path) -> None:
    sweep = backend.submit_sweep(sweep_spec(tmp_path), "again", None)
    first = trials(backend, sweep.sweep_id)
    succeed(backend, first[0]["task_id"], 0.3)
    restarted = make_backend(tmp_path)  # a new API process over the same state directory
    for _ in range(3):
        restarted.step_sweep(sweep.sweep_id)
        backend.step_sweep(sweep.sweep_id)  # even a second writer finds the numbers taken
    after = trials(restarted, sweep.sweep_id)
    assert [row["trial"] for row in after] == [0, 1, 2]
    assert [row["task_id"] for row in after[:2]] == [row["task_id"] for row in first]
    with sqlite3.connect(tmp_path / "state" / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 3


def test_the_median_rule_ends_a_poor_trial_early_stopped_keeping_its_metrics(backend: LocalBackend,
                                                                             tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path, algorithm="random", maxTrials=3, earlyStopping={"type": "median", "minEpochs": 1,
                                                                                "minTrials": 1})
    sweep = backend.submit_sweep(spec, "median", None)
    good, poor = (row["task_id"] for row in trials(backend, sweep.sweep_id))
    succeed(backend, good, 0.6)
    report_epoch(backend, poor, 1, 0.1)
    backend.step_sweep(sweep.sweep_id)
    stopped = backend.get(poor)
    assert stopped is not None and stopped.status is not None
    assert stopped.status.phase == "Failed" and stopped.status.reason == "EarlyStopped"
    assert "early stopped at epoch 1" in (stopped.status.message or "")
    assert stopped.status.metrics is not None and stopped.status.metrics.map50_95 == 0.1
    status = backend.get_sweep(sweep.sweep_id).status  # type: ignore[union-attr]
    assert status.counts is not None and status.counts.early_stopped == 1
    assert trials(backend, sweep.sweep_id)[1]["state"] == "earlyStopped"
    assert unfinished(backend, sweep.sweep_id) == [2]  # its place went to the next trial


def test_a_cancel_cancels_unfinished_trials_and_starts_none(backend: LocalBackend, tmp_path: Path) -> None:
    sweep = backend.submit_sweep(sweep_spec(tmp_path), "stop", None)
    report_epoch(backend, trials(backend, sweep.sweep_id)[0]["task_id"], 1, 0.1)
    cancelled = backend.cancel_sweep(sweep.sweep_id)
    assert cancelled is not None and cancelled.cancelled and cancelled.state() == "failed"
    assert cancelled.status.reason == "Cancelled"
    for row in trials(backend, sweep.sweep_id):
        task = backend.get(row["task_id"])
        assert row["state"] == "failed" and task is not None and task.status is not None
        assert task.status.reason == "Cancelled"
    backend.step_sweep(sweep.sweep_id)
    assert len(trials(backend, sweep.sweep_id)) == 2 and backend.cancel_sweep("nope") is None


def test_submit_refuses_what_a_local_training_would_naming_the_field(backend: LocalBackend, tmp_path: Path) -> None:
    template = {"model": "yolov8n.yaml", "data": str(tmp_path / "d.yaml"), "gpus": 0}
    with pytest.raises(ApiError) as cluster_only:
        backend.submit_sweep(sweep_spec(tmp_path, template={**template, "queueName": "q"}), None, None)
    assert cluster_only.value.status == 422
    assert cluster_only.value.data["errors"][0]["loc"] == ["body", "template", "queue_name"]
    with pytest.raises(ApiError) as missing_model:
        backend.submit_sweep(sweep_spec(tmp_path, parameters={"model": {"values": ["yolov8n.yaml", "none.pt"]}}),
                             None, None)
    assert missing_model.value.data["errors"][0]["loc"] == ["body", "parameters", "model", "values", 1]
    with pytest.raises(ApiError) as suspended:
        backend.submit_sweep(sweep_spec(tmp_path, suspend=True), None, None)
    assert suspended.value.data["errors"][0]["loc"] == ["body", "suspend"]
    backend.submit_sweep(sweep_spec(tmp_path), "taken", None)
    with pytest.raises(ApiError) as taken:
        backend.submit_sweep(sweep_spec(tmp_path), "taken", None)
    assert taken.value.status == 409 and [s.name for s in backend.list_sweeps()] == ["taken"]
    assert backend.list_sweeps(["default"]) == []


def test_a_trial_its_training_would_refuse_fails_the_sweep_saying_which(backend: LocalBackend,
                                                                         tmp_path: Path) -> None:
    sweep = backend.submit_sweep(sweep_spec(tmp_path, parallelism=1), "gone", None)
    (tmp_path / "d.yaml").unlink()  # the dataset went away after submit
    succeed(backend, trials(backend, sweep.sweep_id)[0]["task_id"], 0.3)
    status = backend.step_sweep(sweep.sweep_id)
    assert status is not None and status.phase == "Failed" and status.reason == "InvalidSpec"
    assert "trial gone-001 was refused: dataset file" in (status.message or "")


def test_a_trial_whose_task_retention_deleted_keeps_its_number_and_its_result(backend: LocalBackend,
                                                                              tmp_path: Path) -> None:
    sweep = backend.submit_sweep(sweep_spec(tmp_path, parallelism=1), "kept", None)
    first = trials(backend, sweep.sweep_id)[0]
    succeed(backend, first["task_id"], 0.4)
    backend.step_sweep(sweep.sweep_id)
    local_store.reap(backend._conn, first["task_id"], "kept-000", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 60)
    backend.step_sweep(sweep.sweep_id)
    rows = trials(backend, sweep.sweep_id)
    assert [(row["trial"], row["state"]) for row in rows] == [(0, "succeeded"), (1, "pending")]
    assert rows[0]["objective"] == 0.4 and rows[0]["task_id"] == first["task_id"]
