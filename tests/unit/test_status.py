"""Pure status helpers: progress, F1, final-metric rounding and ETA."""

import datetime as dt
import math

import pytest

from yolo_crd.status import FinalMetrics, TrainingStatus, eta_seconds, f1_score, progress_percent


@pytest.mark.parametrize(("current", "total", "expected"), [
    (0, 3, 0.0), (1, 3, 33.3), (2, 3, 66.7), (3, 3, 100.0), (5, 20, 25.0), (4, 3, 100.0), (-1, 3, 0.0), (1, 0, 0.0),
])
def test_progress_is_clamped_and_rounded(current: int, total: int, expected: float) -> None:
    assert progress_percent(current, total) == expected


@pytest.mark.parametrize(("p", "r", "expected"), [
    (0.9957, 0.3333, 2 * 0.9957 * 0.3333 / (0.9957 + 0.3333)), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.5, 0.0, 0.0),
    (math.nan, 0.5, 0.0),
])
def test_f1_is_the_harmonic_mean(p: float, r: float, expected: float) -> None:
    assert f1_score(p, r) == pytest.approx(expected)


def test_final_metrics_use_the_spec_keys_and_unrounded_f1() -> None:
    final = FinalMetrics.from_validation(0.33171, 0.23219, 0.995712, 0.333349)
    assert final.wire() == {"mAP50": 0.3317, "mAP50-95": 0.2322, "precision": 0.9957, "recall": 0.3333,
                            "f1_score": round(f1_score(0.995712, 0.333349), 4)}
    assert abs(final.f1_score - f1_score(final.precision, final.recall)) < 2e-4


def test_status_round_trips_through_the_wire_form() -> None:
    wire = {"phase": "Running", "stage": "training", "currentEpoch": 2, "totalEpochs": 3, "progress": 66.7,
            "metrics": {"epoch": 2, "mAP50": 0.5, "mAP50-95": 0.3, "f1Score": 0.4},
            "finalMetrics": {"mAP50": 0.1, "mAP50-95": 0.1, "precision": 0.1, "recall": 0.1, "f1_score": 0.1}}
    status = TrainingStatus.model_validate(wire)
    assert status.metrics is not None and status.metrics.map50_95 == 0.3
    assert status.wire() == wire


def test_progress_above_100_is_not_a_valid_status() -> None:
    with pytest.raises(ValueError, match="less than or equal to 100"):
        TrainingStatus(progress=133.0)


def test_eta_extrapolates_the_pace_of_the_done_epochs() -> None:
    now = dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)
    running = TrainingStatus.model_validate({"startTime": "2026-01-01T00:00:00Z", "progress": 25.0})
    assert eta_seconds(running, now) == 3 * 3600  # a quarter took an hour: three more
    assert eta_seconds(running.model_copy(update={"progress": 100.0}), now) is None
    assert eta_seconds(TrainingStatus.model_validate({"progress": 25.0}), now) is None  # not started
    assert eta_seconds(running.model_copy(update={"start_time": "garbage"}), now) is None
