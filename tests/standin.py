"""A fast stand-in for ``python -m yolo_trainer``: the real settings, sink, reporter and progress tracker,
without ultralytics, so that tests can run many trainings through the local backend in seconds.

The local backend runs ``[trainer_python, "-m", "yolo_trainer"]``; :func:`standin_python` writes an
executable that runs this file instead. It is paced by environment variables the trainers inherit from
the API process: ``STANDIN_EPOCH_SECONDS`` (per epoch, default 0.05), ``STANDIN_FAIL`` (report a
training error at the end), ``STANDIN_HANG_AT`` (after that epoch, wait until killed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def standin_python(folder: Path) -> str:
    """An executable to use as ``YOLO_API_TRAINER_PYTHON`` that runs this stand-in."""
    script = folder / "standin-python"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    script.chmod(0o755)
    return str(script)


def main() -> int:
    from yolo_crd.status import FinalMetrics, StopReason
    from yolo_trainer.progress import ProgressTracker, epoch_metrics
    from yolo_trainer.reporter import StatusReporter
    from yolo_trainer.runner import make_sink
    from yolo_trainer.settings import TrainerSettings

    settings = TrainerSettings()
    spec = settings.spec
    assert spec is not None
    reporter = StatusReporter(make_sink(settings, spec), min_interval=float(os.environ.get("STANDIN_REPORT", "0.05")))
    tracker = ProgressTracker(spec.epochs)
    reporter.update(tracker.initializing())
    reporter.update(tracker.started(0, spec.epochs))
    pace = float(os.environ.get("STANDIN_EPOCH_SECONDS", "0.05"))
    hang_at = int(os.environ.get("STANDIN_HANG_AT", "0"))
    for epoch in range(1, spec.epochs + 1):
        time.sleep(pace)
        row = {"metrics/precision(B)": 0.5 + epoch / 100, "metrics/recall(B)": 0.4 + epoch / 100,
               "metrics/mAP50(B)": min(1.0, 0.1 * epoch), "metrics/mAP50-95(B)": min(1.0, 0.05 * epoch),
               "train/box_loss": 2.0 / epoch, "train/cls_loss": 3.0 / epoch, "train/dfl_loss": 1.5 / epoch}
        patch = tracker.epoch_done(epoch_metrics(epoch, row), spec.epochs, last=epoch == spec.epochs)
        if patch is not None:
            reporter.update(patch)
        print(f"epoch {epoch}/{spec.epochs}", flush=True)
        if epoch == hang_at:
            reporter.close(10)
            while True:
                time.sleep(60)
    if os.environ.get("STANDIN_FAIL"):
        reporter.update(tracker.failed("TrainingError", "RuntimeError: the stand-in was told to fail"))
        reporter.close(30)
        return 1
    run = Path(settings.output_dir) / settings.run_id()
    (run / "weights").mkdir(parents=True, exist_ok=True)
    (run / "weights" / "best.pt").write_bytes(b"stand-in")
    final = FinalMetrics.from_validation(0.9, 0.6, 0.8, 0.9)
    stop = StopReason.TIME_LIMIT if "time" in spec.hyperparameters else StopReason.EPOCHS
    reporter.update(tracker.completed(final, str(run / "weights" / "best.pt"), str(run), stop))
    return 0 if reporter.close(30) else 3


if __name__ == "__main__":
    sys.exit(main())
