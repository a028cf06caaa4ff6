"""Truthful progress: epochs never exceed the total, progress never exceeds 100 nor goes backwards, and with
exports requested the epochs take it to 90% and the exports the rest."""

import pytest

from yolo_crd.status import FinalMetrics, StopReason
from yolo_trainer.progress import EPOCHS_SHARE_WITH_EXPORTS, ProgressTracker, epoch_metrics, overall_progress

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


@pytest.mark.parametrize(("epochs", "exports", "exports_done", "percent"), [
    ((3, 3), 0, 0, 100.0), ((1, 3), 0, 0, 33.3), ((3, 3), 2, 0, 90.0), ((1, 2), 1, 0, 45.0),
    ((3, 3), 2, 0.5, 92.5), ((3, 3), 2, 1.5, 97.5), ((3, 3), 2, 2, 100.0), ((3, 3), 2, 5, 100.0)])
def test_the_progress_rule_with_and_without_exports(epochs: tuple[int, int], exports: int, exports_done: float,
                                                    percent: float) -> None:
    assert overall_progress(*epochs, exports=exports, exports_done=exports_done) == percent
    assert EPOCHS_SHARE_WITH_EXPORTS == 90.0


def test_with_exports_the_last_epoch_is_90_percent_and_exporting_moves_on_to_100() -> None:
    tracker = ProgressTracker(2, clock=clock, exports=1)
    tracker.started(0, 2)
    assert [(p or {}).get("progress") for p in (done(tracker, 1, 2), done(tracker, 2, 2, last=True))] == [45.0, 90.0]
    exporting = tracker.exporting("onnx", 0, 1, "exporting")
    assert exporting == {"stage": "exporting", "progress": 90.0, "lastUpdateTime": clock(),
                         "exportProgress": {"format": "onnx", "done": 0, "total": 1, "step": "exporting"}}
    assert tracker.exporting("onnx", 0, 1, "validating")["progress"] == 95.0
    record = {"format": "onnx", "artifact": "best.onnx"}
    assert tracker.exports([record]) == {"exports": [record]}
    gate = {"passed": False, "message": "quality gate not met: mAP50 0.5 < 0.9"}
    final = tracker.completed(FinalMetrics.from_validation(0.5, 0.3, 0.9, 0.7), "/o/w/best.pt", "/o",
                              StopReason.EPOCHS, [], quality_gate=gate, exports=[record])
    assert final["progress"] == 100.0 and final["stage"] == "completed" and final["qualityGate"] == gate
    assert final["exports"] == [record] and final["exportProgress"] is None  # the stage is over


def test_an_early_stop_still_exports_from_90_percent() -> None:
    tracker = ProgressTracker(10, clock=clock, exports=2)
    tracker.started(0, 10)
    assert (done(tracker, 4, 10) or {})["progress"] == 36.0  # patience stopped it at epoch 4
    assert tracker.exporting("torchscript", 1, 2, "exporting")["progress"] == 95.0
