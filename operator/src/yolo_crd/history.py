"""Per-epoch history: ultralytics' ``results.csv`` (the whole history, kept by the trainer in its run
directory) and the bounded sample of it that travels in ``status.history``.

Every watcher (each API replica, the operator) receives the whole resource on every status write, so the
history in status is bounded: at most :data:`HISTORY_SAMPLES` epochs evenly spaced over the run (a
power-of-two stride, so the kept epochs change rarely), the latest :data:`HISTORY_RECENT` and the best.
A write then costs the same at epoch 300 as at epoch 30. The whole history stays in ``results.csv``,
where the API reads it (the local backend from the run directory; object storage when there is one).
The parser lives here because both the trainer and the API read that file.
"""

import csv
import math
from collections.abc import Mapping
from typing import Any, Final

from yolo_crd.status import HISTORY_LIMIT, EpochMetrics, f1_score

HISTORY_SAMPLES: Final = 48
HISTORY_RECENT: Final = 10  # the samples, the latest epochs and the best one: HISTORY_LIMIT (59) at most

# ultralytics' column names (results.csv and trainer.metrics) -> EpochMetrics fields
COLUMNS: Final = {
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
    for column, field in COLUMNS.items():
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


def parse_results(text: str) -> list[EpochMetrics]:
    """Every complete row of a results.csv's text (a last row still being written is skipped)."""
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows: list[EpochMetrics] = []
    for row in csv.DictReader(text.splitlines()):
        cleaned = {key.strip(): value.strip() for key, value in row.items() if key and value is not None}
        try:
            epoch = int(float(cleaned["epoch"]))
        except (KeyError, ValueError):
            continue
        rows.append(epoch_metrics(epoch, cleaned))
    return rows


def fitness(metrics: EpochMetrics) -> float:
    """Ultralytics' own fitness (0.1 mAP50 + 0.9 mAP50-95): the epoch with the highest is the best."""
    return 0.1 * (metrics.map50 or 0.0) + 0.9 * (metrics.map50_95 or 0.0)


def bounded(history: list[EpochMetrics], best_epoch: int | None = None) -> list[EpochMetrics]:
    """The sample of a history that ``status.history`` carries (see the module docstring), in epoch order.

    ``best_epoch`` saves a pass over a long history when the caller already knows it.
    """
    if len(history) <= HISTORY_LIMIT:
        return list(history)
    last = history[-1].epoch
    stride = 1
    while last // stride > HISTORY_SAMPLES:
        stride *= 2
    best = best_epoch if best_epoch is not None else max(history, key=fitness).epoch
    first_recent = history[-HISTORY_RECENT].epoch
    return [m for m in history if m.epoch % stride == 0 or m.epoch >= first_recent or m.epoch == best]
