"""Verified exports: ``best.pt`` to each format of ``spec.export``, each validated against the ``.pt`` model.

For each format the trainer reports stage ``exporting`` with ``exportProgress`` (step ``exporting``, then
``validating``), exports ``best.pt`` with ultralytics on the trainer's own device (its first GPU, or the CPU),
stores the file as an artifact (kind ``export``: uploaded under the run's prefix with an output in object
storage), validates it on the dataset's val split through ultralytics (ONNX through onnxruntime) and
records an :class:`~yolo_crd.delivery.ExportResult` in ``status.exports``.

Fairness: ultralytics validates every non-PyTorch model with square letterboxed images (``rect=False``), a
static ONNX model one image per batch. So the reference is ``best.pt`` validated once under exactly those
settings (one image per batch, ``rect=False``, the same image size and device), never the final metrics
(rectangular batches): the difference then measures the export and nothing else. ONNX is exported with a
static shape (``dynamic=False``, ``1x3xSxS``: what deployments feed it) and simplified with onnxslim.

Failures: an export or a validation that raises fails the training with ExportFailed and ultralytics'
message; an export whose mAP50-95 strays from the reference's by more than ``spec.export_limit()`` (or is
not a number) fails it with ExportMismatch once every format is exported and recorded, with exit code 2:
the same weights give the same figures, so the Job is not retried. A retried pod exports again, and its
records replace the earlier ones (artifacts and exports are keyed by name and format).
"""

import importlib.util
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from yolo_crd.delivery import ExportResult, mismatch_message
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Reason
from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure, one_line
from yolo_trainer.progress import ProgressTracker
from yolo_trainer.reporter import StatusReporter

log = logging.getLogger(__name__)

#: Ultralytics' export arguments per format (beyond format, imgsz and device).
EXPORT_ARGUMENTS: Final[dict[str, dict[str, Any]]] = {
    "onnx": {"dynamic": False, "simplify": True, "nms": False},
    "torchscript": {"nms": False, "optimize": False},
}
#: The packages each format needs at export and validation time (the trainer extra installs them).
DEPENDENCIES: Final[dict[str, tuple[str, ...]]] = {"onnx": ("onnx", "onnxslim", "onnxruntime"), "torchscript": ()}
VALIDATION_DIR: Final = "export-val"
Keep = Callable[[str, Path], dict[str, Any]]
Load = Callable[[str], Any]


def _ultralytics_model(path: str) -> Any:
    from ultralytics import YOLO

    return YOLO(path, task="detect")


def check_dependencies(formats: list[str]) -> None:
    """Fail at once (before training) when a format's packages are not installed: ultralytics would try to
    install them at run time, which the trainer never lets it do."""
    missing = sorted({package for fmt in formats for package in DEPENDENCIES.get(fmt, ())
                      if importlib.util.find_spec(package) is None})
    if missing:
        raise TrainingFailure(Reason.EXPORT_FAILED, f"exporting to {', '.join(formats)} needs the package(s) "
                              f"{', '.join(missing)}, which this trainer lacks (install the trainer extra)",
                              EXIT_INVALID_INPUT)


def _finite(value: float | None) -> float | None:
    return round(value, 4) if value is not None and math.isfinite(value) else None


def figures(metrics: Any) -> tuple[float | None, float | None]:
    """mAP50 and mAP50-95 of an ultralytics DetMetrics, rounded as shown (4 places); None when not finite."""
    return _finite(float(metrics.box.map50)), _finite(float(metrics.box.map))


def _delta(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else round(value - reference, 4)


def export_record(fmt: str, entry: dict[str, Any], measured: tuple[float | None, float | None],
                  reference: tuple[float | None, float | None], seconds: float) -> dict[str, Any]:
    """The ``status.exports`` entry of one export: its artifact (``entry``), its figures, the reference's, the
    differences (export minus reference) and the seconds its export and validation took."""
    map50, map50_95 = (_finite(value) for value in measured)
    ref50, ref50_95 = (_finite(value) for value in reference)
    return ExportResult.model_validate({
        "format": fmt, "artifact": entry["name"], "uri": entry["uri"], "size": entry["size"],
        "sha256": entry["sha256"], "mAP50": map50, "mAP50-95": map50_95, "referenceMAP50": ref50,
        "referenceMAP50-95": ref50_95, "deltaMAP50": _delta(map50, ref50),
        "deltaMAP50-95": _delta(map50_95, ref50_95), "seconds": round(seconds, 2),
    }).wire()


def mismatch(record: dict[str, Any], tolerance: float) -> str | None:
    """The ExportMismatch message when the export's mAP50-95 differs from the reference's by more than
    ``tolerance`` or either is not a number; None when the export is faithful."""
    result = ExportResult.model_validate(record)
    delta = result.delta_map50_95
    if delta is not None and abs(delta) <= tolerance:
        return None
    return mismatch_message(result.format, result.map50_95, result.reference_map50_95, tolerance)


class Exporter:
    """Exports ``best.pt`` to every format of the spec, stores and validates each, reports as it goes."""

    def __init__(self, spec: YoloTrainingSpec, data: Path, run_dir: Path, tracker: ProgressTracker,
                 reporter: StatusReporter, keep: Keep, load: Load = _ultralytics_model) -> None:
        """``keep(name, path)`` stores an export as an artifact and returns its entry; ``load(path)`` makes an
        ultralytics model (a parameter so that tests can stand in for ultralytics)."""
        self._spec, self._data, self._run_dir = spec, data, run_dir
        self._tracker, self._reporter, self._keep, self._load = tracker, reporter, keep, load
        self._device = spec.train_device().split(",")[0]
        self._reference: tuple[float | None, float | None] | None = None

    def validate(self, weights: Path) -> tuple[float | None, float | None]:
        """mAP50 and mAP50-95 of a model file (``.pt`` or an export) under the fair settings (module docstring)."""
        workers = self._spec.hyperparameters.get("workers")
        metrics = self._load(str(weights)).val(
            data=str(self._data), imgsz=self._spec.imgsz, batch=1, rect=False, device=self._device, plots=False,
            project=str(self._run_dir), name=VALIDATION_DIR, exist_ok=True, verbose=False,
            **({"workers": workers} if workers is not None else {}))
        return figures(metrics)

    def _one(self, fmt: str, best: Path, done: int, total: int) -> dict[str, Any]:
        self._reporter.update(self._tracker.exporting(fmt, done, total, "exporting"))
        started = time.monotonic()
        try:
            made = Path(str(self._load(str(best)).export(format=fmt, imgsz=self._spec.imgsz, device=self._device,
                                                   **EXPORT_ARGUMENTS[fmt])))
            if not made.is_file():
                raise FileNotFoundError(f"ultralytics reported {made}, which was not written")
        except Exception as exc:
            log.exception("%s export failed", fmt)
            raise TrainingFailure(Reason.EXPORT_FAILED, f"{fmt} export failed: {one_line(exc)}") from exc
        spent = time.monotonic() - started
        entry = self._keep(made.name, made)
        self._reporter.update(self._tracker.exporting(fmt, done, total, "validating"))
        reference = self._reference or self._validated(best, f"validating {best.name}, the exports' reference")
        self._reference = reference
        started = time.monotonic()
        measured = self._validated(made, f"{fmt} export failed validation")
        return export_record(fmt, entry, measured, reference, spent + time.monotonic() - started)

    def _validated(self, weights: Path, what: str) -> tuple[float | None, float | None]:
        try:
            return self.validate(weights)
        except Exception as exc:
            log.exception("%s", what)
            raise TrainingFailure(Reason.EXPORT_FAILED, f"{what}: {one_line(exc)}") from exc

    def run(self, best: Path) -> list[dict[str, Any]]:
        """Export, store, validate and record every format; return the ``status.exports`` entries.

        Raises :class:`TrainingFailure` (ExportFailed at once; ExportMismatch after every format is recorded).
        """
        formats = list(self._spec.export or [])
        records: list[dict[str, Any]] = []
        for done, fmt in enumerate(formats):
            records.append(self._one(fmt, best, done, len(formats)))
            self._reporter.update(self._tracker.exports(records))
            log.info("%s export: %s", fmt, records[-1])
        problems = [message for record in records if (message := mismatch(record, self._spec.export_limit()))]
        if problems:
            raise TrainingFailure(Reason.EXPORT_MISMATCH, "; ".join(problems), EXIT_INVALID_INPUT)
        return records
