"""Turns training events into truthful status patches: epochs never exceed the total, progress never
exceeds 100 nor goes backwards, and the extra validation after the last epoch is ``finalizing``.

Progress is the share of epochs done, unless ``spec.export`` asks for exports: then the epochs take it up to
:data:`EPOCHS_SHARE_WITH_EXPORTS` (90%) and the exports the rest, each format an equal part, half of it once
the file is made and the rest once it is validated (:func:`overall_progress`). So a training never sits at
100% while it still exports; 100% is the final report.

Pure and clock-injected, so every rule is unit-tested without ultralytics.
"""

from collections.abc import Callable
from typing import Any, Final, Literal

from yolo_crd.history import bounded, epoch_metrics, fitness
from yolo_crd.status import EpochMetrics, FinalMetrics, Stage, StopReason, progress_percent, utc_now

__all__ = ["EPOCHS_SHARE_WITH_EXPORTS", "ProgressTracker", "epoch_metrics", "overall_progress"]

Patch = dict[str, Any]
#: The percent of progress the epochs take when exports follow them (the exports take the rest).
EPOCHS_SHARE_WITH_EXPORTS: Final = 90.0


def overall_progress(epochs_done: int, total_epochs: int, *, exports: int = 0, exports_done: float = 0.0) -> float:
    """Percent done, one decimal: the epochs' share (all of it without exports, else
    :data:`EPOCHS_SHARE_WITH_EXPORTS`) plus the exports' (``exports_done`` of ``exports``, fractions allowed)."""
    epochs = progress_percent(epochs_done, total_epochs)
    if exports <= 0:
        return epochs
    done = min(max(exports_done, 0.0), float(exports)) / exports
    return round(epochs * EPOCHS_SHARE_WITH_EXPORTS / 100.0 + (100.0 - EPOCHS_SHARE_WITH_EXPORTS) * done, 1)


class ProgressTracker:
    """Holds what has been reported so far in this process and produces the next trainer-owned patch."""

    def __init__(self, total_epochs: int, clock: Callable[[], str] = utc_now, *, exports: int = 0) -> None:
        self.total_epochs = total_epochs
        self.export_count = exports
        self.current_epoch = 0
        self.progress = 0.0
        self.history: list[EpochMetrics] = []
        self.best: EpochMetrics | None = None
        self._clock = clock

    def _stamp(self, patch: Patch) -> Patch:
        patch["lastUpdateTime"] = self._clock()
        return patch

    def initializing(self) -> Patch:
        """The trainer process has started: checks and model loading are under way."""
        return self._stamp({"stage": Stage.INITIALIZING.value, "totalEpochs": self.total_epochs,
                            "trainingFailure": None})

    def downloading(self, download: dict[str, Any]) -> Patch:
        """Fetching the dataset or the model from object storage: bytes and files done (``status.download``)."""
        return self._stamp({"stage": Stage.DOWNLOADING.value, "download": download})

    def downloaded(self) -> Patch:
        """The fetch is done (``status.download`` keeps its totals); checks and model loading go on."""
        return self._stamp({"stage": Stage.INITIALIZING.value})

    def lineage(self, model: str, sha256: str | None, source_task: str | None = None,
                source_name: str | None = None) -> Patch:
        """The weights this training starts from (their sha256), and the earlier training they came from."""
        lineage = {"sourceTask": source_task, "sourceName": source_name, "model": model, "sha256": sha256}
        return self._stamp({"lineage": {key: value for key, value in lineage.items() if value is not None}})

    @staticmethod
    def artifacts(manifest: list[dict[str, Any]]) -> Patch:
        """The artifacts stored so far (``last.pt`` during training, all of them at the end)."""
        return {"artifacts": manifest}

    def dataset_checked(self, skipped: dict[str, Any] | None) -> Patch:
        """The dataset check is done: what ultralytics will skip in it (None: nothing)."""
        return self._stamp({"datasetSkipped": skipped})

    def started(self, start_epoch: int, total_epochs: int, history: list[EpochMetrics] | None = None) -> Patch:
        """Training begins at ``start_epoch`` completed epochs (more than 0 when resuming a checkpoint)."""
        self.total_epochs = max(total_epochs, start_epoch)
        self.current_epoch = max(self.current_epoch, start_epoch)
        self.progress = max(self.progress, self._epochs_progress())
        if history:
            self.history = [m for m in history if m.epoch <= start_epoch]
            self.best = max(self.history, key=fitness) if self.history else None
        patch: Patch = {
            "stage": Stage.TRAINING.value,
            "currentEpoch": self.current_epoch,
            "totalEpochs": self.total_epochs,
            "progress": self.progress,
        }
        if start_epoch > 0:
            patch["resumedFromEpoch"] = start_epoch
        if self.history:
            patch.update(self._history_fields())
        return self._stamp(patch)

    def _epochs_progress(self) -> float:
        return overall_progress(self.current_epoch, self.total_epochs, exports=self.export_count)

    def _history_fields(self) -> Patch:
        best = self.best or self.history[-1]
        return {
            "metrics": self.history[-1].wire(),
            "history": [m.wire() for m in bounded(self.history, best.epoch)],
            "bestEpoch": best.epoch,
        }

    def epoch_done(self, metrics: EpochMetrics, total_epochs: int, *, last: bool) -> Patch | None:
        """An epoch (1-based ``metrics.epoch``) finished; None when it would move the status backwards."""
        if metrics.epoch <= self.current_epoch:
            return None
        self.total_epochs = max(total_epochs, metrics.epoch)
        self.current_epoch = metrics.epoch
        self.progress = max(self.progress, self._epochs_progress())
        self.history.append(metrics)  # all of it here; status gets a bounded sample
        if self.best is None or fitness(metrics) > fitness(self.best):
            self.best = metrics
        patch: Patch = {
            "stage": (Stage.FINALIZING if last else Stage.TRAINING).value,
            "currentEpoch": self.current_epoch,
            "totalEpochs": self.total_epochs,
            "progress": self.progress,
            **self._history_fields(),
        }
        return self._stamp(patch)

    def exporting(self, fmt: str, done: int, total: int, step: Literal["exporting", "validating"]) -> Patch:
        """Stage ``exporting``: ``done`` of ``total`` formats are finished, ``fmt`` is at ``step``."""
        exports_done = done + (0.5 if step == "validating" else 0.0)
        # training is over (early stopping included): the epochs' whole share is done
        self.progress = max(self.progress, overall_progress(1, 1, exports=total, exports_done=exports_done))
        return self._stamp({"stage": Stage.EXPORTING.value, "progress": self.progress,
                            "exportProgress": {"format": fmt, "done": done, "total": total, "step": step}})

    @staticmethod
    def exports(records: list[dict[str, Any]]) -> Patch:
        """The verified exports so far (``status.exports``, each format once)."""
        return {"exports": records}

    def completed(self, final: FinalMetrics, weights: str, project: str, stop_reason: StopReason,
                  artifacts: list[dict[str, Any]] | None = None, *, quality_gate: dict[str, Any] | None = None,
                  exports: list[dict[str, Any]] | None = None) -> Patch:
        """Training, the final validation of best.pt and the exports are done (and the artifacts stored).

        The success criteria's outcome (``qualityGate``) comes in this same patch, so no reader ever sees the
        final metrics without the gate's judgement of them.
        """
        self.progress = 100.0
        patch: Patch = {
            "stage": Stage.COMPLETED.value,
            "currentEpoch": self.current_epoch,
            "totalEpochs": max(self.total_epochs, self.current_epoch),
            "progress": self.progress,
            "finalMetrics": final.wire(),
            "weightsPath": weights,
            "projectPath": project,
            "stopReason": stop_reason.value,
            "trainingFailure": None,
        }
        if artifacts is not None:
            patch["artifacts"] = artifacts
        if quality_gate is not None:
            patch["qualityGate"] = quality_gate
        if exports is not None:
            patch.update(exports=exports, exportProgress=None)
        if self.history:
            patch.update(self._history_fields())
        return self._stamp(patch)

    def failed(self, reason: str, error: str) -> Patch:
        """Training cannot go on; progress and epochs stay where they were."""
        return self._stamp({"stage": Stage.FAILED.value, "trainingFailure": {"reason": reason, "message": error}})
