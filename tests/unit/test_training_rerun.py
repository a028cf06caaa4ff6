"""A run directory that holds another configuration's run is refused, not silently reused."""

from pathlib import Path

import pytest
import yaml

from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure
from yolo_trainer.training import _differences, _refuse_other_run

ARGS = {"data": "/d.yaml", "epochs": 5, "imgsz": 64, "batch": 16, "device": "cpu", "project": "/runs", "name": "t",
        "exist_ok": True, "plots": False, "verbose": False, "lr0": 0.01}


def test_another_epoch_count_is_refused(tmp_path: Path) -> None:
    (tmp_path / "args.yaml").write_text(yaml.safe_dump({**ARGS, "epochs": 3, "model": "yolov8n.yaml"}))
    with pytest.raises(TrainingFailure) as caught:
        _refuse_other_run(tmp_path, ARGS)
    assert caught.value.exit_code == EXIT_INVALID_INPUT and "epochs=3 (now 5)" in caught.value.message
    assert "another task id" in caught.value.message


def test_what_a_resume_may_change_is_not_a_difference(tmp_path: Path) -> None:
    (tmp_path / "args.yaml").write_text(yaml.safe_dump({**ARGS, "batch": 8, "device": "0", "imgsz": 96}))
    assert _differences(tmp_path, ARGS) == []
    assert _differences(tmp_path / "nothing-here", ARGS) == []


def test_a_time_budget_lets_epochs_differ(tmp_path: Path) -> None:
    (tmp_path / "args.yaml").write_text(yaml.safe_dump({**ARGS, "epochs": 40, "time": 1.0}))
    assert _differences(tmp_path, {**ARGS, "time": 1.0}) == []
