"""One writer per status field: every patch each component can produce goes through the ownership check.

The trainer's patches come from its progress tracker, the operator's from the translator over a grid of
Job, Pod and status shapes (plus cancel, invalid spec, the late retelling, jobName and observedGeneration),
the local backend's from driving it through submit, start, cancel and every way a trainer can end. Each
must pass :func:`yolo_crd.ownership.check` for its writer and survive the CRD's pruning unchanged.
"""

import itertools
from pathlib import Path
from typing import Any

import pytest

from crd import openapi_schema, pruned_paths
from yolo_api.backends.local import LocalBackend
from yolo_api.settings import ApiSettings
from yolo_crd import ownership
from yolo_crd.ownership import OPERATOR_FIELDS, TRAINER_FIELDS, OwnershipError, check
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import FinalMetrics, StopReason, TrainingStatus
from yolo_io import local_store
from yolo_operator import translate
from yolo_operator.sync import Synchronizer
from yolo_trainer.progress import ProgressTracker, epoch_metrics

ROW = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.4, "metrics/mAP50(B)": 0.3, "metrics/mAP50-95(B)": 0.2,
       "train/box_loss": 1.0, "val/box_loss": float("nan")}
FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def trainer_patches() -> list[dict[str, Any]]:
    tracker = ProgressTracker(3)
    patches = [tracker.initializing(), tracker.started(0, 3),
               tracker.dataset_checked({"images": 1, "labels": 1, "reasons": ["/d/a.jpg: truncated"]})]
    patches += [tracker.epoch_done(epoch_metrics(epoch, ROW), 3, last=epoch == 3) or {} for epoch in (1, 2, 3)]
    patches += [tracker.completed(FinalMetrics.from_validation(0.3, 0.2, 0.5, float("nan")), "/o/best.pt", "/o",
                                  StopReason.EPOCHS),
                tracker.failed("DatasetInvalid", "no labels"),
                tracker.downloading({"uri": "s3://b/d/data.yaml", "doneBytes": 10, "totalBytes": 20, "files": 1,
                                     "totalFiles": 2, "cached": False}),
                tracker.downloaded(), tracker.lineage("s3://b/r/t/best.pt", "0" * 64, "t-uid", "base"),
                tracker.artifacts([{"name": "last.pt", "uri": "s3://b/r/t/last.pt", "size": 3, "sha256": "a" * 64}]),
                tracker.completed(FinalMetrics.from_validation(0.3, 0.2, 0.5, 0.4), "/o/best.pt", "/o", StopReason.EPOCHS,
                                  [{"name": "best.pt", "uri": "/o/weights/best.pt", "size": 3, "sha256": "b" * 64}]),
                ProgressTracker(3).started(2, 3, [epoch_metrics(1, ROW), epoch_metrics(2, ROW)])]
    return patches


JOBS: list[dict[str, Any] | None] = [None] + [
    {"metadata": {"name": "t-1"}, "spec": {"suspend": suspend, "backoffLimit": 3}, "status": status}
    for suspend, status in itertools.product((False, True), (
        {}, {"active": 1, "startTime": "2026-01-01T00:00:00Z"}, {"failed": 1},
        {"uncountedTerminatedPods": {"failed": ["u"]}},
        {"conditions": [{"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"}]},
        {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
        {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
        {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}], "succeeded": 1},
        {"conditions": [{"type": "Complete", "status": "True"}], "completionTime": "2026-01-01T01:00:00Z"}))]
PODS: list[list[dict[str, Any]]] = [[], *([{"metadata": {"name": "p"}, "status": status}] for status in (
    {"phase": "Running"},
    {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                         "message": "0/3 nodes"}]},
    {"phase": "Pending", "containerStatuses": [{"image": "i", "state": {"waiting": {"reason": "ErrImagePull"}}}]},
    {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled", "message": "x"}}}]}))]
STATUSES = [TrainingStatus.model_validate(wire) for wire in (
    {}, {"phase": "Pending", "reason": "Queued", "conditions": [{"type": "Suspended", "status": "True"}]},
    {"phase": "Running", "stage": "training", "currentEpoch": 2},
    {"phase": "Running", "stage": "completed", "finalMetrics": FINAL},
    {"phase": "Running", "stage": "failed", "trainingFailure": {"reason": "DatasetInvalid", "message": "m"}},
    {"phase": "Failed", "reason": "BackoffLimitExceeded", "trainingFailure": {"reason": "TrainingError", "message": "m"}},
    {"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL})]


def operator_patches() -> list[dict[str, Any]]:
    patches = [translate.observe(job, pods, status).patch
               for job, pods, status in itertools.product(JOBS, PODS, STATUSES)]
    patches += [translate.cancelled(status).patch for status in STATUSES]
    patches += [translate.invalid(status, "invalid spec: epochs: too many").patch for status in STATUSES]
    patches += [translate.retold(status).patch for status in STATUSES]
    return patches


class Gateway:
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return JOBS[2]

    def list_pods(self, namespace: str, task_id: str) -> list[dict[str, Any]]:
        return PODS[1]


def synchronizer_patches() -> list[dict[str, Any]]:
    syncer = Synchronizer(Gateway())  # type: ignore[arg-type]
    training = {"metadata": {"name": "t", "namespace": "ns", "uid": "5b8f0c4e-0000"}}
    return [syncer.observe(training, status, generation=3).patch for status in STATUSES]


def local_backend_patches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    original = local_store.patch_status

    def recording(conn: Any, task_id: str, patch: dict[str, Any]) -> bool:
        sent.append(patch)
        return original(conn, task_id, patch)

    monkeypatch.setattr(local_store, "patch_status", recording)
    (tmp_path / "d.yaml").write_text("train: x\n", encoding="utf-8")
    backend = LocalBackend(ApiSettings(state_dir=tmp_path / "state", allowed_roots=[tmp_path], trainer_python="true",
                                       local_gpus=1))
    backend.logs_dir.mkdir(parents=True)
    spec = YoloTrainingSpec(model="yolov8n.yaml", data=str(tmp_path / "d.yaml"))
    first, second = backend.submit(spec, "a", None), backend.submit(spec, "b", None)
    backend.trainers._spawn(first.task_id, "a", "{}")
    backend.cancel(second.task_id)
    for trainer_status, code, lost in (({"stage": "completed", "finalMetrics": FINAL}, 0, False),
                                       ({"stage": "failed", "trainingFailure": {"reason": "X", "message": "m"}}, 1, False),
                                       ({"stage": "training"}, -9, False), ({}, None, True)):
        task = backend.submit(spec, "c", None).task_id
        original(backend._conn, task, trainer_status)
        backend.trainers._finish(task, code, lost=lost)
    return sent


def test_no_field_has_two_writers() -> None:
    assert set() == TRAINER_FIELDS & OPERATOR_FIELDS
    assert set(openapi_schema()["properties"]["status"]["properties"]) == TRAINER_FIELDS | OPERATOR_FIELDS


def test_every_patch_passes_its_writers_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status_schema = openapi_schema()["properties"]["status"]
    produced = {"trainer": trainer_patches(), "operator": [*operator_patches(), *synchronizer_patches(),
                                                           *local_backend_patches(tmp_path, monkeypatch)]}
    assert len(produced["operator"]) > 500 and sum(map(bool, produced["operator"])) > 100  # the grid did write
    for writer, patches in produced.items():
        for patch in patches:
            check(writer, patch)  # type: ignore[arg-type]
            assert pruned_paths(patch, status_schema) == [], (writer, patch)
    fields = {writer: set().union(*patches) for writer, patches in produced.items()}
    assert fields["trainer"] <= TRAINER_FIELDS and fields["operator"] <= OPERATOR_FIELDS


@pytest.mark.parametrize(("writer", "field"), [("trainer", "phase"), ("trainer", "reason"), ("operator", "stage"),
                                               ("operator", "trainingFailure"), ("operator", "error")])
def test_a_foreign_field_is_refused(writer: ownership.Writer, field: str) -> None:
    with pytest.raises(OwnershipError, match=field):
        check(writer, {field: None})
