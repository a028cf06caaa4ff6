"""The YoloTraining contract: names, spec and status models, and the task-status envelope.

Everything the operator, the trainer and the API agree on lives here, defined once. This package is
pure: models, names and pure compositions, no I/O (files, SQLite, Kubernetes or HTTP); the I/O that components
share lives in :mod:`yolo_io`. Every component imports it without heavy dependencies.
"""

from yolo_crd.names import (
    API_VERSION,
    CRD_NAME,
    GROUP,
    KIND,
    LABEL_NAME,
    LABEL_TASK_ID,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from yolo_crd.spec import ALLOWED_HYPERPARAMETERS, YoloTrainingSpec
from yolo_crd.status import (
    Condition,
    EpochMetrics,
    FinalMetrics,
    Phase,
    Reason,
    Stage,
    TrainingStatus,
)

__all__ = [
    "ALLOWED_HYPERPARAMETERS",
    "API_VERSION",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "LABEL_NAME",
    "LABEL_TASK_ID",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "Condition",
    "EpochMetrics",
    "FinalMetrics",
    "Phase",
    "Reason",
    "Stage",
    "TrainingStatus",
    "YoloTrainingSpec",
]

