"""Following results.csv: how progress is reported when callbacks cannot run (multi-GPU DDP)."""

from pathlib import Path

from yolo_crd.status import EpochMetrics
from yolo_trainer.results_csv import ResultsFollower, read_results

HEADER = ("epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
          "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0\n")


def row(epoch: int) -> str:
    return f"{epoch},{epoch * 2.5},1.{epoch},2,3,0.{epoch},0.5,0.{epoch},0.1,1,2,3,0.01\n"


def test_rows_become_epoch_metrics(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    assert read_results(path) == []
    path.write_text(HEADER + row(1) + row(2) + "3,7.5,1.3")  # the last row is still being written
    rows = read_results(path)
    assert [r.epoch for r in rows] == [1, 2]
    assert rows[1].precision == 0.2 and rows[1].train_box_loss == 1.2 and rows[1].f1_score is not None


def test_follower_reports_each_new_row_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    seen: list[EpochMetrics] = []
    follower = ResultsFollower(path, seen.append, poll_seconds=3600)  # polled by hand below
    follower.start(already_seen=1)  # a resumed run: epoch 1 was reported before the restart
    path.write_text(HEADER + row(1))
    follower.poll()
    path.write_text(HEADER + row(1) + row(2))
    follower.poll()
    follower.poll()
    path.write_text(HEADER + row(1) + row(2) + row(3))
    follower.stop()  # reads a last time
    assert [m.epoch for m in seen] == [2, 3]
