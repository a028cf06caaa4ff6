"""The search itself: which parameters trial n gets, and which running trial the median rule stops.

Pure and deterministic, so that the operator (and the local backend) can rebuild a sweep from the trials that
exist after any restart: grid takes the n-th combination, random draws from a generator seeded with the
sweep's seed and n, and tpe (optuna's TPE sampler through its ask-and-tell interface) is refitted on the
finished trials' results each time, seeded with the seed and n. A trial's parameters are decided once, when
it is made, and stored on it; nothing here is ever asked again for a number that exists.
"""

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from yolo_crd.hyperparameters import ALLOWED_HYPERPARAMETERS
from yolo_crd.status import EpochMetrics, FinalMetrics
from yolo_crd.sweep import INTEGER_SPEC_PARAMETERS, Objective, ParameterSpace, YoloSweepSpec

TrialState = Literal["pending", "running", "succeeded", "failed", "earlyStopped"]
#: Trial states that still hold a place in ``parallelism``.
UNFINISHED: frozenset[str] = frozenset({"pending", "running"})
#: The attribute of EpochMetrics / FinalMetrics that holds each objective metric.
_ATTRIBUTE = {"mAP50-95": "map50_95", "mAP50": "map50", "precision": "precision", "recall": "recall",
              "f1Score": "f1_score", "valBoxLoss": "val_box_loss", "valClsLoss": "val_cls_loss",
              "valDflLoss": "val_dfl_loss"}


@dataclass(frozen=True)
class TrialRecord:
    """What the search knows of one existing trial: its number and parameters, its state, its objective (final
    for a succeeded trial, the latest epoch's otherwise) and the objective by epoch."""

    number: int
    name: str
    parameters: dict[str, Any]
    state: TrialState
    objective: float | None = None
    epoch: int | None = None
    curve: dict[int, float] = field(default_factory=dict)
    task_id: str | None = None
    weights: str | None = None
    reason: str | None = None
    stopping: bool = False  # a cancel or an early stop was asked for and the trial has not ended yet


def epoch_value(objective: Objective, metrics: EpochMetrics | FinalMetrics | None) -> float | None:
    """The objective's value in one epoch's metrics (or in the final metrics); None when absent or not finite."""
    value = getattr(metrics, _ATTRIBUTE[objective.metric], None) if metrics is not None else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _integer(name: str) -> bool:
    rule = ALLOWED_HYPERPARAMETERS.get(name)
    return name in INTEGER_SPEC_PARAMETERS or (rule is not None and rule.kind == "int")


def _draw(name: str, space: ParameterSpace, rng: random.Random) -> Any:
    if space.values is not None:
        return rng.choice(space.values)
    assert space.min is not None and space.max is not None  # noqa: PT018 - guaranteed by ParameterSpace
    low, high = float(space.min), float(space.max)
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if space.scale == "log" else rng.uniform(low, high)
    return min(max(round(value), int(low)), int(high)) if _integer(name) else value


def suggest(spec: YoloSweepSpec, number: int, trials: Sequence[TrialRecord]) -> dict[str, Any]:
    """The parameters of trial ``number`` (0-based), given the trials that exist."""
    names = sorted(spec.parameters)
    if spec.algorithm == "grid":
        combination = next(itertools.islice(
            itertools.product(*(spec.parameters[name].values or [] for name in names)), number, None))
        return dict(zip(names, combination, strict=True))
    if spec.algorithm == "random":
        rng = random.Random(f"{spec.seed}:{number}")  # noqa: S311 - reproducible sampling, not crypto
        return {name: _draw(name, spec.parameters[name], rng) for name in names}
    return _tpe(spec, number, trials)


def _distribution(name: str, space: ParameterSpace) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if space.values is not None:
        return CategoricalDistribution(space.values)
    log = space.scale == "log"
    if _integer(name):
        return IntDistribution(int(space.min or 0), int(space.max or 0), log=log)
    return FloatDistribution(float(space.min or 0), float(space.max or 0), log=log)


def _tpe(spec: YoloSweepSpec, number: int, trials: Sequence[TrialRecord]) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {name: _distribution(name, space) for name, space in sorted(spec.parameters.items())}
    startup = min(10, max(2, spec.max_trials // 4))
    sampler = optuna.samplers.TPESampler(seed=spec.seed + number, n_startup_trials=startup)
    study = optuna.create_study(direction=spec.objective.goal, sampler=sampler)
    for trial in trials:
        if trial.state == "succeeded" and trial.objective is not None and set(trial.parameters) == set(distributions):
            study.add_trial(optuna.trial.create_trial(params=trial.parameters, distributions=distributions,
                                                      value=trial.objective))
    return dict(study.ask(distributions).params)


def value_at(curve: dict[int, float], epoch: int) -> float | None:
    """The objective at ``epoch``, or at the latest epoch before it that was recorded (a bounded history)."""
    known = [e for e in curve if e <= epoch]
    return curve[max(known)] if known else None


def early_stops(spec: YoloSweepSpec, trials: Sequence[TrialRecord]) -> list[tuple[TrialRecord, str]]:
    """Running trials the median rule stops, each with the message its training ends with (EarlyStopped).

    A running trial at epoch k (k >= ``minEpochs``) is compared with the succeeded trials' objective at epoch k;
    with at least ``minTrials`` of them, one whose value is worse than their median is stopped.
    """
    rule = spec.early_stopping
    if rule is None or rule.type != "median":
        return []
    finished = [trial for trial in trials if trial.state == "succeeded" and trial.curve]
    stops = []
    for trial in trials:
        if trial.state != "running" or trial.epoch is None or trial.epoch < rule.min_epochs:
            continue
        value = trial.curve.get(trial.epoch)
        peers = [v for other in finished if (v := value_at(other.curve, trial.epoch)) is not None]
        if value is None or len(peers) < rule.min_trials:
            continue
        median = statistics.median(peers)
        if spec.objective.better(median, value):
            stops.append((trial, f"early stopped at epoch {trial.epoch}: {spec.objective.metric} {value:.4f} is worse "
                                 f"than the median {median:.4f} of {len(peers)} finished trials at that epoch"))
    return stops


def best(spec: YoloSweepSpec, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The succeeded trial with the best final objective (the lowest number among equals), or None."""
    found: TrialRecord | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state != "succeeded" or trial.objective is None:
            continue
        if found is None or found.objective is None or spec.objective.better(trial.objective, found.objective):
            found = trial
    return found
