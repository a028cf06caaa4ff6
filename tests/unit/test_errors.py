"""Failures become a reason and a one-line message, never a traceback."""

from yolo_crd.status import Reason
from yolo_trainer.errors import EXIT_TRAINING_ERROR, TrainingFailure, classify


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.cuda.OutOfMemoryError (same class name)."""


def test_cuda_oom_says_what_to_lower() -> None:
    failure = classify(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), batch=64, imgsz=1280)
    assert failure.reason is Reason.OUT_OF_MEMORY
    assert "batch=64" in failure.message and "imgsz=1280" in failure.message and "batch=-1" in failure.message


def test_other_errors_keep_type_and_message_on_one_line() -> None:
    failure = classify(ValueError("bad\nthing\n  happened"), batch=1, imgsz=32)
    assert failure.reason is Reason.TRAINING_ERROR and failure.exit_code == EXIT_TRAINING_ERROR
    assert failure.message == "ValueError: bad thing happened"
    assert len(classify(RuntimeError("x" * 5000), batch=1, imgsz=32).message) <= 1100


def test_known_failures_pass_through() -> None:
    known = TrainingFailure(Reason.DATASET_INVALID, "labels", 2)
    assert classify(known, batch=1, imgsz=32) is known
