"""Truthful progress: epochs never exceed the total, progress never exceeds 100 nor goes backwards."""

from yolo_crd.status import FinalMetrics, StopReason
from yolo_trainer.progress import ProgressTracker, epoch_metrics

ROW = {"metrics/precision(B)": 0.8, "metrics/recall(B)": 0.6, "metrics/mAP50(B)": 0.7, "metrics/mAP50-95(B)": 0.4}


def clock() -> str:
    return "2026-01-01T00:00:00Z"


def done(tracker: ProgressTracker, epoch: int, total: int, *, last: bool = False, **row: float) -> dict | None:
    return tracker.epoch_done(epoch_metrics(epoch, {**ROW, **row}), total, last=last)


def test_three_epochs_report_one_third_steps_up_to_100() -> None:
    tracker = ProgressTracker(3, clock=clock)
    assert tracker.started(0, 3)["progress"] == 0.0
    patches = [done(tracker, e, 3, last=e == 3) for e in (1, 2, 3)]
    assert [(p["currentEpoch"], p["progress"], p["stage"]) for p in patches if p] == [
        (1, 33.3, "training"), (2, 66.7, "training"), (3, 100.0, "finalizing")]
    assert patches[-1] and patches[-1]["lastUpdateTime"] == "2026-01-01T00:00:00Z"


def test_epoch_metrics_carry_f1_and_losses() -> None:
    metrics = epoch_metrics(4, {**ROW, "train/box_loss": "1.23456789", "val/cls_loss": 2, "bogus": 1})
    assert metrics.f1_score == round(2 * 0.8 * 0.6 / 1.4, 5)
    assert metrics.train_box_loss == 1.23457 and metrics.val_cls_loss == 2.0 and metrics.epoch == 4


def test_the_final_validation_is_not_a_new_epoch_and_nothing_goes_backwards() -> None:
    tracker = ProgressTracker(3, clock=clock)
    tracker.started(0, 3)
    for epoch in (1, 2, 3):
        done(tracker, epoch, 3)
    assert done(tracker, 3, 3) is None  # repeated
    assert done(tracker, 2, 3) is None  # backwards
    assert tracker.current_epoch == 3 and tracker.progress == 100.0


def test_time_budget_re_estimates_total_without_moving_progress_back() -> None:
    tracker = ProgressTracker(100, clock=clock)
    tracker.started(0, 100)
    first = done(tracker, 1, 2)  # ultralytics' time= mode re-estimates epochs after epoch 1
    second = done(tracker, 2, 10)  # ... and the estimate grows
    assert first and second
    assert first["progress"] == 50.0 and second["progress"] == 50.0  # not 20%
    assert second["totalEpochs"] == 10 and second["currentEpoch"] <= second["totalEpochs"]


def test_current_epoch_never_exceeds_total() -> None:
    tracker = ProgressTracker(3, clock=clock)
    patch = done(tracker, 5, 3)
    assert patch and patch["totalEpochs"] == 5 and patch["progress"] == 100.0


def test_resume_reports_the_epoch_it_starts_from_and_keeps_history() -> None:
    tracker = ProgressTracker(5, clock=clock)
    history = [epoch_metrics(1, ROW), epoch_metrics(2, ROW), epoch_metrics(3, ROW)]
    patch = tracker.started(2, 5, history)
    assert patch["resumedFromEpoch"] == 2 and patch["currentEpoch"] == 2 and patch["progress"] == 40.0
    assert [h["epoch"] for h in patch["history"]] == [1, 2]  # rows past the checkpoint are redone
    nxt = done(tracker, 3, 5)
    assert nxt and [h["epoch"] for h in nxt["history"]] == [1, 2, 3]


def test_best_epoch_uses_ultralytics_fitness() -> None:
    tracker = ProgressTracker(3, clock=clock)
    done(tracker, 1, 3, **{"metrics/mAP50-95(B)": 0.2})
    done(tracker, 2, 3, **{"metrics/mAP50-95(B)": 0.5})
    patch = done(tracker, 3, 3, **{"metrics/mAP50-95(B)": 0.3})
    assert patch and patch["bestEpoch"] == 2


def test_completion_and_failure() -> None:
    tracker = ProgressTracker(10, clock=clock)
    tracker.started(0, 10)
    done(tracker, 1, 10)
    final = FinalMetrics.from_validation(0.5, 0.3, 0.9, 0.7)
    patch = tracker.completed(final, "/o/w/best.pt", "/o", StopReason.EARLY_STOPPING)
    assert patch["stage"] == "completed" and patch["progress"] == 100.0 and patch["currentEpoch"] == 1
    assert patch["stopReason"] == "early_stopping" and patch["finalMetrics"]["f1_score"] == round(2 * .9 * .7 / 1.6, 4)
    assert patch["trainingFailure"] is None  # clears a previous attempt's failure
    failed = tracker.failed("DatasetInvalid", "bad labels")
    assert failed == {"stage": "failed", "trainingFailure": {"reason": "DatasetInvalid", "message": "bad labels"},
                      "lastUpdateTime": clock()}
