"""Training failures a user can act on: a reason, a plain message (never a traceback), an exit code.

Exit codes tell the Job controller what to do: 2 means the input is wrong and retrying cannot help (the
operator's podFailurePolicy fails the Job at once), 1 is a training error, 3 means training finished but
the final status could not be delivered (a retry re-validates the finished run and reports it again).
"""

from typing import TYPE_CHECKING, Final

from yolo_crd.status import Reason

if TYPE_CHECKING:
    from yolo_trainer.storage import StorageError

EXIT_OK: Final = 0
EXIT_TRAINING_ERROR: Final = 1
EXIT_INVALID_INPUT: Final = 2
EXIT_REPORT_UNDELIVERED: Final = 3

_MAX_MESSAGE: Final = 1000


class TrainingFailure(Exception):
    """A failure with a user-facing message; raised by checks and by :func:`classify`."""

    def __init__(self, reason: Reason, message: str, exit_code: int = EXIT_TRAINING_ERROR) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.exit_code = exit_code


def model_not_found(path: str) -> TrainingFailure:
    """The seed spec's failure: the model file does not exist (the message names the path)."""
    return TrainingFailure(Reason.MODEL_NOT_FOUND, f"模型文件不存在 (model file not found): {path}", EXIT_INVALID_INPUT)


def dataset_invalid(message: str) -> TrainingFailure:
    """The dataset YAML, its images or its labels cannot be used as they are."""
    return TrainingFailure(Reason.DATASET_INVALID, message, EXIT_INVALID_INPUT)


def storage_failure(exc: "StorageError") -> TrainingFailure:
    """Object storage failed: unreachable (a retry of the pod may help), or it refused the credentials (not)."""
    if exc.kind == "denied":
        return TrainingFailure(Reason.ACCESS_DENIED, exc.message, EXIT_INVALID_INPUT)
    if exc.kind == "unavailable":
        return TrainingFailure(Reason.STORAGE_UNAVAILABLE, exc.message)
    return TrainingFailure(Reason.TRAINING_ERROR, exc.message)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (emoji markers dropped), at most 1000 characters: fit for a status."""
    text = " ".join(str(exc).replace("❌", " ").split()) or type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def classify(exc: BaseException, *, batch: int, imgsz: int) -> TrainingFailure:
    """Turn any exception raised by training into a failure with an actionable, traceback-free message."""
    if isinstance(exc, TrainingFailure):
        return exc
    from yolo_trainer.storage import StorageError

    if isinstance(exc, StorageError):
        return storage_failure(exc)
    text = one_line(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text:
        return TrainingFailure(
            Reason.OUT_OF_MEMORY,
            f"GPU out of memory at batch={batch}, imgsz={imgsz}: lower batch or imgsz, or use batch=-1 "
            f"to size the batch automatically ({text})",
        )
    return TrainingFailure(Reason.TRAINING_ERROR, f"{type(exc).__name__}: {text}")
