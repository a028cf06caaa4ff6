"""Turns training events into truthful status patches: epochs never exceed the total, progress never
exceeds 100 nor goes backwards, and the extra validation after the last epoch is ``finalizing``.

Pure and clock-injected, so every rule is unit-tested without ultralytics.
"""

import math
from collections.abc import Callable, Mapping
from typing import Any

from yolo_crd.status import (
    HISTORY_LIMIT,
    EpochMetrics,
    FinalMetrics,
    Stage,
    StopReason,
    f1_score,
    progress_percent,
    utc_now,
)

Patch = dict[str, Any]

# ultralytics' column names (results.csv and trainer.metrics) -> EpochMetrics fields
_COLUMNS = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "map50",
    "metrics/mAP50-95(B)": "map50_95",
    "train/box_loss": "train_box_loss",
    "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss",
    "val/box_loss": "val_box_loss",
    "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss",
}


def epoch_metrics(epoch: int, row: Mapping[str, Any]) -> EpochMetrics:
    """Build one epoch's metrics from ultralytics' column names, adding F1 = 2PR/(P+R).

    A value that is not a finite number (a diverging run's NaN or inf loss) is left out: JSON cannot carry
    it, and one such value would make every later status write invalid.
    """
    values: dict[str, float] = {}
    for column, field in _COLUMNS.items():
        raw = row.get(column)
        if raw is None or raw == "":
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            values[field] = round(value, 5)
    if "precision" in values and "recall" in values:
        values["f1_score"] = round(f1_score(values["precision"], values["recall"]), 5)
    return EpochMetrics(epoch=epoch, **values)


def _fitness(metrics: EpochMetrics) -> float:
    # ultralytics' own fitness: 0.1 * mAP50 + 0.9 * mAP50-95
    return 0.1 * (metrics.map50 or 0.0) + 0.9 * (metrics.map50_95 or 0.0)


class ProgressTracker:
    """Holds what has been reported so far in this process and produces the next trainer-owned patch."""

    def __init__(self, total_epochs: int, clock: Callable[[], str] = utc_now) -> None:
        self.total_epochs = total_epochs
        self.current_epoch = 0
        self.progress = 0.0
        self.history: list[EpochMetrics] = []
        self._clock = clock

    def _stamp(self, patch: Patch) -> Patch:
        patch["lastUpdateTime"] = self._clock()
        return patch

    def initializing(self) -> Patch:
        """The trainer process has started: checks and model loading are under way."""
        return self._stamp({"stage": Stage.INITIALIZING.value, "totalEpochs": self.total_epochs,
                            "trainingFailure": None})

    def started(self, start_epoch: int, total_epochs: int, history: list[EpochMetrics] | None = None) -> Patch:
        """Training begins at ``start_epoch`` completed epochs (more than 0 when resuming a checkpoint)."""
        self.total_epochs = max(total_epochs, start_epoch)
        self.current_epoch = max(self.current_epoch, start_epoch)
        self.progress = max(self.progress, progress_percent(self.current_epoch, self.total_epochs))
        if history:
            self.history = [m for m in history if m.epoch <= start_epoch][-HISTORY_LIMIT:]
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

    def _history_fields(self) -> Patch:
        best = max(self.history, key=_fitness)
        return {
            "metrics": self.history[-1].wire(),
            "history": [m.wire() for m in self.history],
            "bestEpoch": best.epoch,
        }

    def epoch_done(self, metrics: EpochMetrics, total_epochs: int, *, last: bool) -> Patch | None:
        """An epoch (1-based ``metrics.epoch``) finished; None when it would move the status backwards."""
        if metrics.epoch <= self.current_epoch:
            return None
        self.total_epochs = max(total_epochs, metrics.epoch)
        self.current_epoch = metrics.epoch
        self.progress = max(self.progress, progress_percent(self.current_epoch, self.total_epochs))
        self.history = [*self.history, metrics][-HISTORY_LIMIT:]
        patch: Patch = {
            "stage": (Stage.FINALIZING if last else Stage.TRAINING).value,
            "currentEpoch": self.current_epoch,
            "totalEpochs": self.total_epochs,
            "progress": self.progress,
            **self._history_fields(),
        }
        return self._stamp(patch)

    def completed(self, final: FinalMetrics, weights: str, project: str, stop_reason: StopReason) -> Patch:
        """Training and the final validation of best.pt are done."""
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
        if self.history:
            patch.update(self._history_fields())
        return self._stamp(patch)

    def failed(self, reason: str, error: str) -> Patch:
        """Training cannot go on; progress and epochs stay where they were."""
        return self._stamp({"stage": Stage.FAILED.value, "trainingFailure": {"reason": reason, "message": error}})
