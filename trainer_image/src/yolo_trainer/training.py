"""One ultralytics training, from a fresh model or resumed from ``last.pt``, ending in final metrics.

The run directory is chosen here, never by the user: ``<output_dir>/<task id>``, absolute (a relative
``project=`` would land under ``runs/detect/``). When it already holds an unfinished ``last.pt`` (a pod
restarted after preemption), training resumes from it; when it holds a finished run, only the final
validation is redone, so a retry after an undelivered final status reports the same result.

Plots are on (``plots=True``) unless the trainer's settings turn them off (``YOLO_TRAINER_PLOTS=false``):
ultralytics draws them into the run directory, and a validation of ``best.pt`` that the trainer runs itself
draws its curves and confusion matrices into ``<run>/final-val`` (:mod:`yolo_trainer.plots` picks the
artifacts from both).
"""

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import FinalMetrics, Reason, StopReason
from yolo_trainer.callbacks import ProgressCallbacks
from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure
from yolo_trainer.plots import FINAL_VALIDATION_DIR
from yolo_trainer.progress import ProgressTracker
from yolo_trainer.reporter import StatusReporter
from yolo_trainer.results_csv import ResultsFollower, read_results

log = logging.getLogger(__name__)

# Arguments ultralytics lets a resumed run change (ultralytics/engine/trainer.py check_resume).
_RESUME_OVERRIDES = ("imgsz", "batch", "device", "workers", "cache", "patience", "time", "val", "plots")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a finished training produced."""

    final: FinalMetrics
    weights: Path
    project: Path
    stop_reason: StopReason


def checkpoint_epoch(last: Path) -> int | None:
    """Completed epochs recorded in ``last.pt``; -1 when the run finished (optimizer stripped); None if absent."""
    if not last.is_file():
        return None
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    epoch = int(ckpt.get("epoch", -1))
    return -1 if epoch < 0 else epoch + 1


def final_metrics(validation: Any) -> FinalMetrics:
    """Final metrics from an ultralytics DetMetrics, from the unrounded mean precision and recall."""
    box = validation.box
    return FinalMetrics.from_validation(float(box.map50), float(box.map), float(box.mp), float(box.mr))


def train_arguments(spec: YoloTrainingSpec, data: Path, run_dir: Path, *, plots: bool = True) -> dict[str, Any]:
    """The ultralytics ``train()`` keyword arguments for a spec; outputs always go to ``run_dir``."""
    return {
        **spec.hyperparameters,
        "data": str(data),
        "epochs": spec.epochs,
        "imgsz": spec.imgsz,
        "batch": spec.batch,
        "device": spec.train_device(),
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
        "plots": plots,
        "verbose": False,
    }


def _validate_best(best: Path, args: dict[str, Any], run_dir: Path) -> FinalMetrics:
    from ultralytics import YOLO

    device = str(args["device"]).split(",")[0]
    batch = args["batch"] if args["batch"] > 0 else 16
    validation = YOLO(str(best)).val(
        data=args["data"], imgsz=args["imgsz"], batch=batch, device=device, plots=args["plots"],
        project=str(run_dir), name=FINAL_VALIDATION_DIR, exist_ok=True, verbose=False,
    )
    return final_metrics(validation)


def _differences(run_dir: Path, args: dict[str, Any]) -> list[str]:
    """What the run already in ``run_dir`` (its ultralytics ``args.yaml``) was trained with that this one changes.

    Only arguments a resumed run cannot change count; ``epochs`` is skipped under ``time=`` (ultralytics
    recomputes it from the time budget).
    """
    saved_file = run_dir / "args.yaml"
    if not saved_file.is_file():
        return []
    import yaml

    saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
    keys = [key for key in args if key not in (*_RESUME_OVERRIDES, "project", "name", "exist_ok", "verbose")]
    if "time" in args:
        keys.remove("epochs")
    return [f"{key}={saved.get(key)!r} (now {args[key]!r})" for key in keys
            if key in saved and str(saved.get(key)) != str(args[key])]


def _refuse_other_run(run_dir: Path, args: dict[str, Any]) -> None:
    differences = _differences(run_dir, args)
    if differences:
        raise TrainingFailure(
            Reason.TRAINING_ERROR,
            f"run directory {run_dir} holds a run trained with {', '.join(differences)}: its weights would be reused "
            "as they are; give this training another task id (--task-id) or output directory, or delete that run",
            EXIT_INVALID_INPUT)


def _stop_reason(spec: YoloTrainingSpec, epochs_done: int) -> StopReason:
    if "time" in spec.hyperparameters:
        return StopReason.TIME_LIMIT
    return StopReason.EARLY_STOPPING if epochs_done < spec.epochs else StopReason.EPOCHS


def run_training(
    spec: YoloTrainingSpec,
    data: Path,
    run_dir: Path,
    tracker: ProgressTracker,
    reporter: StatusReporter,
    *,
    follow_results_csv: bool,
    callbacks: dict[str, Callable[[Any], None]] | None = None,
    on_results_row: Callable[[int, Path], object] | None = None,
    plots: bool = True,
) -> Outcome:
    """Train (or resume, or only re-validate a finished run) and return the final metrics of best.pt.

    ``callbacks`` are more ultralytics callbacks by event (the checkpoint uploader's ``on_model_save``); like
    the progress callbacks they run only where ultralytics runs callbacks (not in multi-GPU DDP workers).
    When following results.csv instead (DDP), ``on_results_row(epoch, run_dir)`` is called after each new
    row is reported (the checkpoint uploader's DDP path).
    """
    from ultralytics import YOLO

    args = train_arguments(spec, data, run_dir, plots=plots)
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    done = checkpoint_epoch(last)
    if done:
        _refuse_other_run(run_dir, args)
    validation: Any = None
    if done == -1 and not best.is_file():  # a finished run without best.pt: its final weights stand in
        log.warning("run %s finished but has no best.pt; validating its last.pt instead", run_dir)
        shutil.copyfile(last, best)
    if done == -1:
        log.info("run %s already finished; validating best.pt again", run_dir)
        history = read_results(run_dir / "results.csv")
        reporter.update(tracker.started(len(history), max(spec.epochs, len(history)), history))
    else:
        if done:
            log.info("resuming %s from epoch %d", last, done)
            model = YOLO(str(last))
            kwargs = {key: args[key] for key in (*_RESUME_OVERRIDES, "data") if key in args}
            kwargs.update(resume=True, verbose=False)
        else:
            model = YOLO(spec.model)
            kwargs = args
        follower = None
        if follow_results_csv:
            history = read_results(run_dir / "results.csv") if done else []
            reporter.update(tracker.started(done or 0, spec.epochs, history))
            def row(metrics: Any) -> None:
                _on_row(tracker, reporter, metrics, spec)
                if on_results_row is not None:
                    on_results_row(int(metrics.epoch), run_dir)

            follower = ResultsFollower(run_dir / "results.csv", row)
            follower.start(already_seen=len(history))
        else:
            for event, callback in {**ProgressCallbacks(tracker, reporter).as_dict(), **(callbacks or {})}.items():
                model.add_callback(event, callback)
        try:
            model.train(**kwargs)
        finally:
            if follower is not None:
                follower.stop()
        trainer = getattr(model, "trainer", None)
        validator = getattr(trainer, "validator", None) if not follow_results_csv else None
        validation = getattr(validator, "metrics", None)
    if not best.is_file():
        raise FileNotFoundError(f"training finished but {best} was not written")
    final = final_metrics(validation) if validation is not None else _validate_best(best, args, run_dir)
    return Outcome(final, best, run_dir, _stop_reason(spec, tracker.current_epoch))


def _on_row(tracker: ProgressTracker, reporter: StatusReporter, metrics: Any, spec: YoloTrainingSpec) -> None:
    patch = tracker.epoch_done(metrics, spec.epochs, last=metrics.epoch >= spec.epochs)
    if patch is not None:
        reporter.update(patch)
