"""The ``spec`` of a YoloSweep: a training template, the parameters to search, how, and for what.

A sweep runs trials, each a YoloTraining owned by the sweep, whose spec is the template with one value per
searched parameter. The same model validates a CR body in the operator, a ``POST /sweeps`` body in the API
and the local backend's sweeps, and its bounds match the CRD's schema and CEL rules (tests compare them), so
a sweep refused by one is refused by all, with a message naming the field.
"""

import math
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from yolo_crd.hyperparameters import ALLOWED_HYPERPARAMETERS
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.wire import WireModel, one_line

#: The most trials one sweep may run (its status table stays bounded whatever the count: yolo_crd.sweep_status).
MAX_TRIALS_CAP: Final = 200
#: Parameters with a spec field of their own that a sweep may search, next to the hyperparameter allow-list.
SPEC_PARAMETERS: Final = ("imgsz", "batch", "epochs", "model")
INTEGER_SPEC_PARAMETERS: Final = ("imgsz", "batch", "epochs")
#: Objective metrics: the final metrics (maximized) and the last epoch's validation losses (minimized).
QUALITY_METRICS: Final = ("mAP50-95", "mAP50", "precision", "recall", "f1Score")
LOSS_METRICS: Final = ("valBoxLoss", "valClsLoss", "valDflLoss")
Algorithm = Literal["grid", "random", "tpe"]
Value = StrictBool | StrictInt | StrictFloat | StrictStr


class ParameterSpace(WireModel):
    """One searched parameter: a list of ``values``, or a range ``{min, max, scale}`` (integers stay integers)."""

    values: list[Value] | None = Field(default=None, min_length=1, max_length=MAX_TRIALS_CAP)
    min: StrictInt | StrictFloat | None = None
    max: StrictInt | StrictFloat | None = None
    scale: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _values_or_range(self) -> "ParameterSpace":
        ranged = self.min is not None or self.max is not None
        if self.values is not None and ranged:
            raise ValueError("give either values or a range (min, max), not both")
        if self.values is None and not ranged:
            raise ValueError("give values: [...] or a range {min, max}")
        if ranged:
            if self.min is None or self.max is None:
                raise ValueError("a range needs both min and max")
            if not self.min < self.max:
                raise ValueError(f"the range is empty or inverted: min {self.min} must be below max {self.max}")
            if self.scale == "log" and self.min <= 0:
                raise ValueError(f"a log range needs bounds above 0, got min {self.min}")
        elif self.values is not None and len({repr(v) for v in self.values}) != len(self.values):
            raise ValueError("values lists a value twice")
        return self

    def is_range(self) -> bool:
        """Whether this is a continuous (or integer) range rather than a list of values."""
        return self.values is None


class Objective(WireModel):
    """What a sweep optimizes: a final metric (maximized) or the last epoch's validation loss (minimized)."""

    metric: Literal["mAP50-95", "mAP50", "precision", "recall", "f1Score", "valBoxLoss", "valClsLoss", "valDflLoss"]
    goal: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _goal_fits_metric(self) -> "Objective":
        if self.metric in QUALITY_METRICS and self.goal != "maximize":
            raise ValueError(f"{self.metric} is a quality metric: goal must be maximize (minimize is for losses)")
        if self.metric in LOSS_METRICS and self.goal != "minimize":
            raise ValueError(f"{self.metric} is a loss: goal must be minimize")
        return self

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` is strictly better than ``b``."""
        return a > b if self.goal == "maximize" else a < b


class EarlyStopping(WireModel):
    """The median stopping rule: from ``minEpochs`` on, once ``minTrials`` trials have finished, a running trial
    whose objective at its epoch k is worse than the median of the finished trials' at epoch k is stopped."""

    type: Literal["none", "median"] = "none"
    min_epochs: Annotated[int, Field(ge=1, le=10000)] = 3
    min_trials: Annotated[int, Field(ge=1, le=MAX_TRIALS_CAP)] = 3


def parameter_problem(name: str, space: ParameterSpace, template: YoloTrainingSpec, algorithm: str) -> str | None:
    """What is wrong with searching ``name`` over ``space`` from ``template``, or None."""
    if name not in ALLOWED_HYPERPARAMETERS and name not in SPEC_PARAMETERS:
        return (f"{name!r} cannot be searched: a sweep searches the hyperparameter allow-list and "
                f"{', '.join(SPEC_PARAMETERS)}")
    if space.is_range():
        if algorithm == "grid":
            return "grid needs values: [...] (a grid cannot enumerate a continuous range)"
        rule = ALLOWED_HYPERPARAMETERS.get(name)
        kind = "int" if name in INTEGER_SPEC_PARAMETERS else rule.kind if rule else "choice"
        if kind not in ("int", "float"):
            return f"{name!r} is not numeric: give values: [...]"
        if kind == "int" and not (isinstance(space.min, int) and isinstance(space.max, int)):
            return f"{name!r} is an integer: min and max must be integers"
        candidates: list[Any] = [space.min, space.max]
    else:
        candidates = list(space.values or [])
    for index, value in enumerate(candidates):
        problem = trial_spec_problem(template, {name: value})
        if problem is not None:
            where = "min" if space.is_range() and index == 0 else "max" if space.is_range() else f"values[{index}]"
            return f"{where}: {problem}"
    return None


def trial_spec(template: YoloTrainingSpec, parameters: dict[str, Any]) -> YoloTrainingSpec:
    """The spec of a trial: the template with each searched parameter set (spec fields, else hyperparameters)."""
    fields = {key: value for key, value in parameters.items() if key in SPEC_PARAMETERS}
    hyper = {key: value for key, value in parameters.items() if key not in SPEC_PARAMETERS}
    wire = template.wire()
    wire.update(fields)
    wire["hyperparameters"] = {**template.hyperparameters, **hyper}
    return YoloTrainingSpec.model_validate(wire)


def trial_spec_problem(template: YoloTrainingSpec, parameters: dict[str, Any]) -> str | None:
    """Why a trial with these parameters would be refused, in one line; None when it is a valid spec."""
    try:
        trial_spec(template, parameters)
    except ValidationError as exc:
        return one_line(exc)
    return None


def grid_size(parameters: dict[str, ParameterSpace]) -> int:
    """How many combinations a grid over these parameters has."""
    return math.prod(len(space.values or []) for space in parameters.values())


class YoloSweepSpec(WireModel):
    """A hyperparameter search: trials made from ``template``, at most ``parallelism`` at once, ``maxTrials`` in all."""

    template: YoloTrainingSpec
    parameters: dict[str, ParameterSpace] = Field(min_length=1, max_length=16)
    algorithm: Algorithm = "random"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    objective: Objective
    max_trials: Annotated[int, Field(ge=1, le=MAX_TRIALS_CAP)]
    parallelism: Annotated[int, Field(ge=1, le=MAX_TRIALS_CAP)] = 1
    early_stopping: EarlyStopping | None = None
    suspend: bool = Field(default=False, description="Cancel running trials and start no more until false.")

    @model_validator(mode="after")
    def _parameters_usable(self) -> "YoloSweepSpec":
        problems = [f"parameters.{name}: {problem}" for name, space in self.parameters.items()
                    if (problem := parameter_problem(name, space, self.template, self.algorithm)) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def trial_budget(self) -> int:
        """How many trials the sweep runs in all: ``maxTrials``, or the grid's size when that is smaller."""
        return min(self.max_trials, grid_size(self.parameters)) if self.algorithm == "grid" else self.max_trials
