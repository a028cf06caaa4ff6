"""What a team needs before it ships a model: verified exports and quality gates, in the spec and the status.

``spec.export`` lists deployment formats; the trainer exports ``best.pt`` to each, validates each export on
the dataset's val split and records the figures in ``status.exports`` (an export whose mAP50-95 strays from
the ``.pt`` model's by more than ``spec.exportTolerance`` fails the training with ExportMismatch).
``spec.successCriteria`` sets minimum final metrics; the trainer judges them with :func:`judge` on its final
metrics and reports the outcome as ``status.qualityGate`` in the same write, so every reader (the verdict,
the envelope, the operator's ``QualityGate`` condition) sees one decision, made once.
"""

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from yolo_crd.wire import StatusModel, WireModel

#: The formats ``spec.export`` accepts: each installs from PyPI with the trainer (nothing at run time).
EXPORT_FORMATS: Final = ("onnx", "torchscript")
ExportFormat = Literal["onnx", "torchscript"]
#: The default ``spec.exportTolerance``: the most an export's mAP50-95 may differ from the ``.pt`` model's.
DEFAULT_EXPORT_TOLERANCE: Final = 0.01
#: The metrics ``spec.successCriteria`` may name (wire names), and the final-metrics key each is judged on.
CRITERIA_METRICS: Final[dict[str, str]] = {
    "precision": "precision", "recall": "recall", "mAP50": "mAP50", "mAP50-95": "mAP50-95", "f1Score": "f1_score",
}
#: The reason of a training whose final metrics miss its success criteria (the verdict's, final).
QUALITY_GATE_NOT_MET: Final = "QualityGateNotMet"
#: The condition the operator keeps for every training with success criteria.
QUALITY_GATE_CONDITION: Final = "QualityGate"

Threshold = Annotated[float, Field(ge=0.0, le=1.0)]


class SuccessCriteria(WireModel):
    """Minimum final metrics a training must reach to succeed, e.g. ``{mAP50: 0.5, recall: 0.6}``."""

    precision: Threshold | None = None
    recall: Threshold | None = None
    map50: Threshold | None = Field(default=None, alias="mAP50")
    map50_95: Threshold | None = Field(default=None, alias="mAP50-95")
    f1_score: Threshold | None = Field(default=None, alias="f1Score")

    @model_validator(mode="before")
    @classmethod
    def _known_metrics(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            unknown = sorted(str(key) for key in value if key not in CRITERIA_METRICS and key not in
                             ("map50", "map50_95", "f1_score"))
            if unknown:
                raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}: successCriteria takes "
                                 f"{', '.join(CRITERIA_METRICS)}")
            if not value:
                raise ValueError(f"successCriteria must name at least one of {', '.join(CRITERIA_METRICS)}")
        return value

    def thresholds(self) -> dict[str, float]:
        """The criteria that are set, by wire name (``mAP50``, ``f1Score``...), in a stable order."""
        values = self.model_dump(by_alias=True)
        return {name: float(values[name]) for name in CRITERIA_METRICS if values.get(name) is not None}


class QualityGate(StatusModel):
    """The outcome of the success criteria on the final metrics (trainer-owned), with a message naming each
    metric, its value and its threshold."""

    passed: bool
    message: Annotated[str, Field(max_length=1000)]


class ExportResult(StatusModel):
    """One verified export (trainer-owned): its artifact, and its validation against the ``.pt`` model's.

    ``reference*`` are the ``.pt`` model's figures under the same validation settings as the export's (one
    image per batch, square letterbox), so the difference measures the export and nothing else.
    """

    format: str
    artifact: Annotated[str, Field(min_length=1, max_length=255)]
    uri: Annotated[str, Field(min_length=1, max_length=2048)]
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    map50: float | None = Field(default=None, alias="mAP50")
    map50_95: float | None = Field(default=None, alias="mAP50-95")
    reference_map50: float | None = Field(default=None, alias="referenceMAP50")
    reference_map50_95: float | None = Field(default=None, alias="referenceMAP50-95")
    delta_map50: float | None = Field(default=None, alias="deltaMAP50")
    delta_map50_95: float | None = Field(default=None, alias="deltaMAP50-95")
    seconds: Annotated[float, Field(ge=0)] | None = None

    def view(self) -> dict[str, Any]:
        """The envelope's snake_case view of this export."""
        return {"format": self.format, "artifact": self.artifact, "uri": self.uri, "size": self.size,
                "sha256": self.sha256, "mAP50": self.map50, "mAP50-95": self.map50_95,
                "reference_mAP50": self.reference_map50, "reference_mAP50-95": self.reference_map50_95,
                "delta_mAP50": self.delta_map50, "delta_mAP50-95": self.delta_map50_95}


class ExportProgress(StatusModel):
    """Where the export stage is (trainer-owned): ``done`` of ``total`` formats, working on ``format``."""

    format: str | None = None
    done: Annotated[int, Field(ge=0)] = 0
    total: Annotated[int, Field(ge=0)] = 0
    step: Literal["exporting", "validating"] | None = None


def _shown(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


def judge(criteria: SuccessCriteria, final_metrics: Mapping[str, float | None]) -> QualityGate:
    """Judge ``criteria`` on the final metrics (the envelope's keys: ``mAP50``, ``f1_score``...).

    A metric that is not a number (a diverged run) misses its threshold. The message names every criterion:
    the missed ones (``mAP50 0.41 < 0.5``) when the gate fails, all of them when it passes.
    """
    missed: list[str] = []
    met: list[str] = []
    for name, threshold in criteria.thresholds().items():
        value = final_metrics.get(CRITERIA_METRICS[name])
        if value is None:
            missed.append(f"{name} is not a number (threshold {_shown(threshold)})")
        elif value < threshold:
            missed.append(f"{name} {_shown(value)} < {_shown(threshold)}")
        else:
            met.append(f"{name} {_shown(value)} >= {_shown(threshold)}")
    if missed:
        return QualityGate(passed=False, message="quality gate not met: " + "; ".join(missed))
    return QualityGate(passed=True, message="quality gate met: " + "; ".join(met))


def mismatch_message(format_: str, export_value: float | None, reference: float | None, tolerance: float) -> str:
    """The ExportMismatch message: the format, both mAP50-95 figures, their difference and the tolerance."""
    if export_value is None or reference is None:
        return f"{format_} export: mAP50-95 is not a number (export {export_value}, .pt model {reference})"
    return (f"{format_} export: mAP50-95 {export_value:.4f} differs from the .pt model's {reference:.4f} by "
            f"{abs(export_value - reference):.4f}, more than the tolerance {tolerance:g} (spec.exportTolerance)")
