"""The trainer's main flow: check inputs, train, store the artifacts, export, judge the quality gate, report;
map every failure to a reason and an exit code.

A training whose final metrics miss ``spec.successCriteria`` still exits 0: training worked, its weights,
plots and exports are stored, and the final report carries ``qualityGate.passed: false``, from which the
verdict (:func:`yolo_crd.outcome.verdict`) makes it Failed with QualityGateNotMet.

Reporting never kills training and training failures never escape as tracebacks: each ends as
``stage=failed`` with a reason and a message a user can act on, delivered before the process exits.
"""

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolo_crd.delivery import judge
from yolo_crd.locations import artifact_prefix
from yolo_crd.spec import YoloTrainingSpec
from yolo_trainer.artifacts import Uploader, artifact, local_artifacts
from yolo_trainer.checks import check_dataset, check_model
from yolo_trainer.errors import EXIT_OK, EXIT_REPORT_UNDELIVERED, EXIT_TRAINING_ERROR, TrainingFailure, classify
from yolo_trainer.export import Exporter, check_dependencies
from yolo_trainer.inputs import prepare
from yolo_trainer.plots import provide_fonts
from yolo_trainer.progress import ProgressTracker
from yolo_trainer.reporter import StatusReporter
from yolo_trainer.settings import TrainerSettings
from yolo_trainer.sinks import LogSink, StatusSink
from yolo_trainer.storage import ObjectStore

if TYPE_CHECKING:
    from yolo_trainer.training import Outcome

log = logging.getLogger(__name__)


def make_sink(settings: TrainerSettings, spec: YoloTrainingSpec) -> StatusSink:
    """The sink the settings ask for; a missing setting is a clear configuration error."""
    if settings.sink == "kubernetes":
        if not settings.namespace or not settings.name:
            raise ValueError("the kubernetes sink needs YOLO_TRAINER_NAMESPACE and YOLO_TRAINER_NAME")
        from yolo_trainer.sinks.kubernetes import KubernetesStatusSink

        return KubernetesStatusSink(settings.namespace, settings.name, uid=settings.task_id)
    if settings.sink == "local":
        if settings.state_db is None:
            raise ValueError("the local sink needs YOLO_TRAINER_STATE_DB (the SQLite state file)")
        from yolo_trainer.sinks.local import LocalStatusSink

        return LocalStatusSink(settings.state_db, settings.run_id(), name=settings.name, spec=spec.wire())
    return LogSink()


def configure_ultralytics(settings: TrainerSettings, output_dir: Path) -> None:
    """Offline and analytics-free unless downloads are allowed; never installing packages at run time (the
    export dependencies come with the trainer extra); settings kept next to the outputs, with the fonts its
    plots need (:func:`~yolo_trainer.plots.provide_fonts`)."""
    if not settings.allow_downloads:
        os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(output_dir / ".ultralytics"))
    from ultralytics import settings as ultralytics_settings
    from ultralytics.utils import USER_CONFIG_DIR

    ultralytics_settings.update({"sync": False})
    provide_fonts(Path(USER_CONFIG_DIR))  # the directory in force: fixed when ultralytics was first imported


def deliver(spec: YoloTrainingSpec, outcome: "Outcome", data: Path, tracker: ProgressTracker,
            reporter: StatusReporter, uploader: Uploader | None) -> None:
    """After training: store the artifacts, export and verify (``spec.export``), judge the success criteria,
    and send the final report (stage completed, final metrics, quality gate, artifacts and exports in one
    patch). Raises when an artifact cannot be stored or an export fails."""
    # a run whose artifacts could not be stored is not a success: an upload failure raises here
    run_dir = outcome.project
    artifacts = uploader.finish(run_dir, data) if uploader is not None else local_artifacts(run_dir, data)
    reporter.update(tracker.artifacts(artifacts))

    def keep(name: str, path: Path) -> dict[str, Any]:  # an export: stored and listed like the rest
        entry = uploader.upload(name, path) if uploader is not None else artifact(name, str(path), path)
        artifacts[:] = [*(item for item in artifacts if item["name"] != name), entry]
        reporter.update(tracker.artifacts(artifacts))
        return entry

    exports = Exporter(spec, data, run_dir, tracker, reporter, keep).run(outcome.weights) if spec.export else None
    gate = judge(spec.success_criteria, outcome.final.view()) if spec.success_criteria is not None else None
    reporter.update(tracker.completed(outcome.final, str(outcome.weights), str(run_dir), outcome.stop_reason,
                                      artifacts, quality_gate=gate.wire() if gate is not None else None,
                                      exports=exports))
    log.info("training finished: %s, weights %s%s", outcome.final.wire(), outcome.weights,
             f"; {gate.message}" if gate is not None else "")


def run(settings: TrainerSettings, spec: YoloTrainingSpec, sink: StatusSink | None = None) -> int:
    """Train ``spec`` and report to ``sink`` (default: from the settings); return the process exit code."""
    from yolo_trainer.training import run_training  # imports torch and ultralytics lazily

    output_dir = settings.output_dir.absolute()
    run_dir = output_dir / settings.run_id()
    try:
        sink = sink or make_sink(settings, spec)
    except Exception as exc:  # no way to report: say why in the log and let the Job retry
        log.error("cannot report status (%s: %s); not training", type(exc).__name__, exc)
        return EXIT_TRAINING_ERROR
    reporter = StatusReporter(sink, min_interval=settings.report_interval)
    tracker = ProgressTracker(spec.epochs, exports=len(spec.export or []))
    reporter.update(tracker.initializing())
    code = EXIT_OK
    uploader: Uploader | None = None
    try:
        configure_ultralytics(settings, output_dir)
        check_dependencies(list(spec.export or []))
        store = ObjectStore(retry_seconds=settings.storage_retry_seconds)
        inputs = prepare(settings, spec, store, run_dir, tracker, reporter)
        check_model(inputs.model, allow_downloads=settings.allow_downloads)
        dataset = check_dataset(str(inputs.data), run_dir, spec.hyperparameters)
        reporter.update(tracker.dataset_checked(dataset.wire()))
        data = dataset.data
        if spec.output is not None:
            uploader = Uploader(store, artifact_prefix(spec.output, settings.run_id()),
                                lambda manifest: reporter.update(tracker.artifacts(manifest)),
                                every=settings.checkpoint_upload_epochs)
        follow_csv = settings.follow_results_csv if settings.follow_results_csv is not None else spec.gpus > 1
        callbacks: dict[str, Callable[[Any], None]] = {}
        if uploader is not None:
            callbacks["on_model_save"] = uploader.on_model_save
        outcome = run_training(spec.model_copy(update={"model": inputs.model}), data, run_dir, tracker, reporter,
                               follow_results_csv=follow_csv, callbacks=callbacks,
                               on_results_row=uploader.on_results_row if uploader is not None else None,
                               plots=settings.plots)
        deliver(spec, outcome, data, tracker, reporter, uploader)
    except Exception as exc:
        if uploader is not None:
            uploader.close()
        failure: TrainingFailure = classify(exc, batch=spec.batch, imgsz=spec.imgsz)
        if failure is not exc:
            log.exception("training failed")
        log.error("training failed (%s): %s", failure.reason, failure.message)
        reporter.update(tracker.failed(failure.reason.value, failure.message))
        code = failure.exit_code
    if not reporter.close(settings.final_report_timeout) and code == EXIT_OK:
        code = EXIT_REPORT_UNDELIVERED
    return code
