"""The history in status is bounded; the whole history is results.csv. A write costs the same at any epoch."""

import json
import random

from yolo_crd.history import HISTORY_RECENT, HISTORY_SAMPLES, bounded, epoch_metrics, fitness
from yolo_crd.status import ARTIFACTS_LIMIT, HISTORY_LIMIT, EpochMetrics, FinalMetrics, StopReason, TrainingStatus
from yolo_trainer.progress import ProgressTracker

COLUMNS = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "train/box_loss",
           "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss")


def history_of(epochs: int, seed: int = 0) -> list[EpochMetrics]:
    rng = random.Random(seed)
    return [epoch_metrics(epoch, {column: rng.uniform(0.1, 3.0) for column in COLUMNS})
            for epoch in range(1, epochs + 1)]


def run(epochs: int) -> tuple[ProgressTracker, list[dict[str, object]]]:
    """The trainer's patches for the last ten epochs of a run (the earlier ones as a resumed run's history)."""
    history = history_of(epochs)
    tracker = ProgressTracker(epochs)
    start = max(0, epochs - 10)
    patches = [tracker.started(start, epochs, history[:start])]
    for metrics in history[start:]:
        patches.append(tracker.epoch_done(metrics, epochs, last=metrics.epoch == epochs) or {})
    return tracker, patches


def resource(status: dict[str, object]) -> dict[str, object]:
    """A YoloTraining as every watcher receives it: spec, metadata with kopf's annotations, both writers' status."""
    spec = {"model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 300, "imgsz": 640, "batch": 16,
            "gpus": 1, "hyperparameters": {"lr0": 0.01, "optimizer": "SGD", "patience": 50}}
    conditions = [{"type": kind, "status": "Unknown", "reason": "Running", "message": "the trainer is running",
                   "lastTransitionTime": "2026-11-30T06:00:00Z"} for kind in ("Succeeded", "Running", "Scheduled")]
    operator = {"phase": "Running", "jobName": "shapes-5b8f0c4e", "observedGeneration": 1,
                "startTime": "2026-11-30T06:00:00Z", "conditions": conditions}
    annotations = {"yolo-operator.io/last-handled": json.dumps({"spec": spec}),
                   "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"spec": spec})}
    meta = {"name": "shapes", "namespace": "team-a", "uid": "5b8f0c4e-2d4b-4b1e-9d7a-000000000001",
            "resourceVersion": "123456789", "generation": 1, "creationTimestamp": "2026-11-30T06:00:00Z",
            "annotations": annotations}
    return {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": meta, "spec": spec,
            "status": {**operator, **status}}


def test_the_sample_is_bounded_and_keeps_the_latest_and_the_best() -> None:
    assert HISTORY_SAMPLES + HISTORY_RECENT + 1 == HISTORY_LIMIT
    for epochs in (10, 59, 60, 100, 300, 1000, 10_000):
        history = history_of(epochs)
        kept = bounded(history)
        epochs_kept = [m.epoch for m in kept]
        assert len(kept) <= HISTORY_LIMIT and epochs_kept == sorted(set(epochs_kept))
        assert epochs_kept[-HISTORY_RECENT:] == list(range(epochs - HISTORY_RECENT + 1, epochs + 1))
        assert max(history, key=fitness).epoch in epochs_kept
        if epochs > HISTORY_LIMIT:  # evenly spread over the whole run, not only its end
            assert epochs_kept[0] <= epochs // HISTORY_SAMPLES * 2


def test_the_kept_epochs_change_rarely() -> None:
    """A power-of-two stride: an epoch sampled at one write is still sampled at the next, mostly."""
    history = history_of(300)
    changes = 0
    for end in range(100, 300):
        before = {m.epoch for m in bounded(history[:end])} - set(range(end - HISTORY_RECENT, end + 1))
        after = {m.epoch for m in bounded(history[: end + 1])}
        changes += bool(before - after)
    assert changes <= 3


def test_a_status_write_costs_the_same_at_epoch_300_as_at_epoch_30() -> None:
    sizes = {}
    for epochs in (30, 300, 10_000):
        _, patches = run(epochs)
        sizes[epochs] = len(json.dumps({"status": patches[-1]}))
    assert sizes[10_000] < sizes[300] * 1.1 and sizes[300] < sizes[30] * 2.5  # bounded, not linear
    assert sizes[10_000] < 16 * 1024


def test_the_whole_resource_stays_under_32_kib_and_parses() -> None:
    for epochs in (300, 10_000):
        tracker, patches = run(epochs)
        status: dict[str, object] = {}
        for patch in patches:
            status.update(patch)
        final = FinalMetrics.from_validation(0.5, 0.3, 0.6, 0.5)
        status.update(tracker.completed(final, "/outputs/x/weights/best.pt", "/outputs/x", StopReason.EPOCHS))
        obj = resource(status)
        assert len(json.dumps(obj)) < 32 * 1024, epochs
        TrainingStatus.model_validate(obj["status"])


def test_a_full_resource_with_every_artifact_export_and_gate_stays_under_32_kib() -> None:
    """The largest status a run writes: 10,000 epochs, the artifact list full (weights, plots, exports) with
    long object-storage URIs, two verified exports and a quality gate's longest message."""
    tracker, patches = run(10_000)
    status: dict[str, object] = {}
    for patch in patches:
        status.update(patch)
    final = FinalMetrics.from_validation(0.5, 0.3, 0.6, 0.5)
    status.update(tracker.completed(final, "/outputs/x/weights/best.pt", "/outputs/x", StopReason.EPOCHS))
    prefix = "s3://a-rather-long-bucket-name-for-models/team-a/detectors/yolo/5b8f0c4e-2d4b-4b1e-9d7a-000000000001"
    status["artifacts"] = [{"name": f"val_batch{i}_predictions-{'x' * 20}.jpg", "uri": f"{prefix}/val_batch{i}.jpg",
                            "size": 123_456_789, "sha256": "a" * 64, "kind": "plot"} for i in range(ARTIFACTS_LIMIT)]
    status["exports"] = [{"format": name, "artifact": f"best.{name}", "uri": f"{prefix}/best.{name}", "size": 12_345_678,
                          "sha256": "b" * 64, "mAP50": 0.51234, "mAP50-95": 0.31234, "referenceMAP50": 0.51234,
                          "referenceMAP50-95": 0.31234, "deltaMAP50": -0.00012, "deltaMAP50-95": 0.00034,
                          "seconds": 12.5} for name in ("onnx", "torchscript")]
    status["qualityGate"] = {"passed": False, "message": "m" * 1000}
    obj = resource(status)
    assert len(json.dumps(obj)) < 32 * 1024
    TrainingStatus.model_validate(obj["status"])
