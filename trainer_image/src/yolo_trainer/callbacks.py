"""Ultralytics callbacks that report progress, in the style of ``ultralytics/utils/callbacks``.

Methods are named exactly after the events and registered as a dict. They run on rank 0 only (ultralytics
does not run custom callbacks in DDP workers; see :mod:`yolo_trainer.results_csv` for that case) and they
never raise into training: a failure is logged and training goes on.
"""

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_trainer.progress import ProgressTracker, epoch_metrics
from yolo_trainer.reporter import StatusReporter
from yolo_trainer.results_csv import read_results

log = logging.getLogger(__name__)


def _never_raise(method: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    @functools.wraps(method)
    def wrapper(self: Any, trainer: Any) -> None:
        try:
            method(self, trainer)
        except Exception:
            log.exception("progress callback %s failed; training continues", method.__name__)

    return wrapper


class ProgressCallbacks:
    """Feeds ultralytics' trainer events into a :class:`ProgressTracker` and a :class:`StatusReporter`."""

    def __init__(self, tracker: ProgressTracker, reporter: StatusReporter) -> None:
        self.tracker = tracker
        self.reporter = reporter
        self._open_epoch: int | None = None

    @_never_raise
    def on_train_start(self, trainer: Any) -> None:
        """Report the training stage, the epoch it starts from and, when resuming, the history so far."""
        start = int(getattr(trainer, "start_epoch", 0) or 0)
        history = read_results(Path(trainer.save_dir) / "results.csv") if start else None
        self.reporter.update(self.tracker.started(start, int(trainer.epochs), history))

    @_never_raise
    def on_train_epoch_end(self, trainer: Any) -> None:
        """Remember that a real epoch is open, to tell its fit end from the final validation's."""
        self._open_epoch = int(trainer.epoch)

    @_never_raise
    def on_fit_epoch_end(self, trainer: Any) -> None:
        """Report an epoch's metrics; the extra call after the final validation of best.pt is ignored."""
        if self._open_epoch is None:
            return  # final_eval of best.pt: not a new epoch, final metrics are taken after train()
        self._open_epoch = None
        row = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **(trainer.metrics or {})}
        metrics = epoch_metrics(int(trainer.epoch) + 1, row)
        patch = self.tracker.epoch_done(metrics, int(trainer.epochs), last=bool(trainer.stop))
        if patch is not None:
            self.reporter.update(patch)

    def as_dict(self) -> dict[str, Callable[[Any], None]]:
        """The callbacks by event name, for ``YOLO.add_callback``."""
        return {
            "on_train_start": self.on_train_start,
            "on_train_epoch_end": self.on_train_epoch_end,
            "on_fit_epoch_end": self.on_fit_epoch_end,
        }
