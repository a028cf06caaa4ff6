"""Progress from ultralytics' ``results.csv``: the source of truth when callbacks cannot run.

In multi-GPU (DDP) training ultralytics runs the epochs in worker processes where our callbacks are not
registered, but rank 0 still appends one row per epoch to ``results.csv``. The launching process follows
that file to report progress. The same parser restores ``history`` when a run resumes.
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from yolo_crd.history import parse_results
from yolo_crd.status import EpochMetrics

__all__ = ["ResultsFollower", "read_results"]


def read_results(path: Path) -> list[EpochMetrics]:
    """Parse a results.csv (a missing file: no rows yet)."""
    try:
        return parse_results(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []

log = logging.getLogger(__name__)


class ResultsFollower:
    """Polls a results.csv in a thread and calls ``on_epoch`` once per new row, in order."""

    def __init__(self, path: Path, on_epoch: Callable[[EpochMetrics], None], poll_seconds: float = 1.0) -> None:
        self._path = path
        self._on_epoch = on_epoch
        self._poll = poll_seconds
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="results-follower", daemon=True)

    def start(self, already_seen: int = 0) -> "ResultsFollower":
        """Begin following; rows before ``already_seen`` (a resumed run's earlier epochs) are skipped."""
        self._seen = already_seen
        self._thread.start()
        return self

    def poll(self) -> None:
        """Read the file once and report rows not reported yet."""
        rows = read_results(self._path)
        for row in rows[self._seen :]:
            try:
                self._on_epoch(row)
            except Exception:
                log.exception("reporting epoch %s from %s failed", row.epoch, self._path)
        self._seen = max(self._seen, len(rows))

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            self.poll()

    def stop(self) -> None:
        """Stop the thread and read the file a last time, so no final row is missed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.poll()
