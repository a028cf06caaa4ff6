"""What a run starts from, made local: the weights (a path, ``s3://``, or an earlier training's ``best.pt``),
the dataset (a path or ``s3://``), and, with an output in object storage, an interrupted run's checkpoint.

It runs before the dataset check and training, so that a wrong bucket, wrong credentials or an unreachable
endpoint fail in seconds with their own reason (``OutputInvalid``, ``AccessDenied``, ``StorageUnavailable``,
``DatasetInvalid``, ``ModelNotFound``), never after hours of training.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_crd.locations import artifact_prefix, is_s3, source_ref
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Reason
from yolo_trainer.artifacts import restore_run
from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure, model_not_found, storage_failure
from yolo_trainer.fetch import Report, fetch_dataset, fetch_model
from yolo_trainer.progress import ProgressTracker
from yolo_trainer.reporter import StatusReporter
from yolo_trainer.settings import TrainerSettings
from yolo_trainer.storage import ObjectStore, StorageError, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """The local model (a path or a name ultralytics knows) and the local dataset YAML."""

    model: str
    data: Path


def prepare(settings: TrainerSettings, spec: YoloTrainingSpec, store: ObjectStore, run_dir: Path,
            tracker: ProgressTracker, reporter: StatusReporter) -> Inputs:
    """Check the output, restore a checkpoint, fetch the model and the dataset; report the lineage."""
    output_dir = run_dir.parent
    fetched = False

    def report(view: dict[str, Any]) -> None:
        nonlocal fetched
        fetched = True
        reporter.update(tracker.downloading(dict(view)))

    if spec.output is not None:
        prefix = artifact_prefix(spec.output, settings.run_id())
        try:
            store.check_bucket(prefix)
            restore_run(store, prefix, run_dir)
        except StorageError as exc:
            if exc.kind in ("missing", "invalid"):
                raise TrainingFailure(Reason.OUTPUT_INVALID, f"output {spec.output}: the bucket {prefix.bucket!r} "
                                      "does not exist (create it, or fix spec.output)", EXIT_INVALID_INPUT) from None
            raise storage_failure(exc) from None
    model = _model(settings, spec, store, output_dir, tracker, reporter, report)
    data = fetch_dataset(store, spec.data, output_dir, report) if is_s3(spec.data) else Path(spec.data)
    if fetched:
        reporter.update(tracker.downloaded())
    return Inputs(model, data)


def _model(settings: TrainerSettings, spec: YoloTrainingSpec, store: ObjectStore, output_dir: Path,
           tracker: ProgressTracker, reporter: StatusReporter, report: Report) -> str:
    ref = source_ref(spec.model)
    if ref is not None:
        source = settings.source
        if source is None:
            raise model_not_found(f"{spec.model} (no resolved source was given: YOLO_TRAINER_SOURCE is set by the "
                                  "operator or the local API)")
        weights = source.weights
        local = fetch_model(store, weights, output_dir, report) if is_s3(weights) else Path(weights)
        if not local.is_file():
            raise model_not_found(f"{weights} (the best.pt of {ref})")
        sha256 = sha256_of(local)
        if source.sha256 and source.sha256 != sha256:
            raise model_not_found(f"{weights}: its sha256 {sha256} is not the {source.sha256} that {ref} reported")
        reporter.update(tracker.lineage(weights, sha256, source.task, source.name))
        return str(local)
    if is_s3(spec.model):
        local = fetch_model(store, spec.model, output_dir, report)
        reporter.update(tracker.lineage(spec.model, sha256_of(local)))
        return str(local)
    path = Path(spec.model)
    if path.suffix == ".pt" and path.is_file():
        reporter.update(tracker.lineage(spec.model, sha256_of(path)))
    return spec.model
