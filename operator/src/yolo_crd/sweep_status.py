"""A sweep's status and its next step, as pure functions of its spec and the trials that exist.

The trials are the sweep's state: each carries its number (a label) and its parameters (an annotation), and
its own status says how it went. :func:`plan` reads them and says what to do now (which trial numbers to
make, which running trials the median rule stops, which to cancel) and what the sweep's status is, so that
an operator restarted at any moment, or the local backend after an API restart, carries on from the trials
alone: no number is made twice (names are deterministic, a create that finds its name taken is a success),
none is lost, and never more than ``parallelism`` are unfinished.
"""

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from yolo_crd.names import ANNOTATION_CANCEL, ANNOTATION_EARLY_STOP, ANNOTATION_TRIAL_PARAMETERS, LABEL_TRIAL
from yolo_crd.outcome import TaskState, task_state
from yolo_crd.search import UNFINISHED, TrialRecord, TrialState, best, early_stops, epoch_value, suggest
from yolo_crd.status import Condition, Reason, TrainingStatus
from yolo_crd.sweep import YoloSweepSpec
from yolo_crd.wire import StatusModel

#: Rows of ``status.trials``: the unfinished trials, then the best by objective; the rest are counted in
#: ``trialsOmitted`` (each trial is a YoloTraining: ``kubectl get yt -l yolo-operator.io/sweep=<name>``).
TRIAL_TABLE_LIMIT: Final = 50
SweepPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class TrialRow(StatusModel):
    """One trial in the sweep's table."""

    trial: Annotated[int, Field(ge=0)]
    name: str
    task_id: str | None = None
    state: str
    objective: float | None = None
    epoch: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class BestTrial(StatusModel):
    """The succeeded trial with the best final objective, and where its best.pt is."""

    trial: int
    name: str
    task_id: str | None = None
    objective: float
    parameters: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = None


class SweepCounts(StatusModel):
    """How many trials were made, and in which state they are."""

    total: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    early_stopped: int = 0


class YoloSweepStatus(StatusModel):
    """A sweep's status, written by the operator (or the local backend) only."""

    phase: SweepPhase | None = None
    done: str | None = None  # "finished/budget" trials, for kubectl's Done column
    reason: str | None = None
    message: str | None = None
    counts: SweepCounts | None = None
    best: BestTrial | None = None
    trials: list[TrialRow] | None = Field(default=None, max_length=TRIAL_TABLE_LIMIT)
    trials_omitted: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


def trial_record(training: Mapping[str, Any], spec: YoloSweepSpec) -> TrialRecord | None:
    """What the search needs of one trial (a YoloTraining as the API returns it); None for one without a number."""
    meta = training.get("metadata") or {}
    try:
        number = int((meta.get("labels") or {})[LABEL_TRIAL])
        parameters = json.loads((meta.get("annotations") or {}).get(ANNOTATION_TRIAL_PARAMETERS) or "{}")
    except (KeyError, ValueError):
        return None
    annotations = meta.get("annotations") or {}
    return record_of(spec, number, str(meta.get("name", "")), parameters,
                     TrainingStatus.model_validate(training.get("status") or {}), task_id=meta.get("uid"),
                     stopping=ANNOTATION_CANCEL in annotations or ANNOTATION_EARLY_STOP in annotations)


def record_of(spec: YoloSweepSpec, number: int, name: str, parameters: dict[str, Any], status: TrainingStatus, *,
              task_id: str | None = None, stopping: bool = False) -> TrialRecord:
    """A trial's record from its number, name, parameters and training status (any backend's)."""
    state = _state(status)
    curve = {m.epoch: v for m in status.history or [] if (v := epoch_value(spec.objective, m)) is not None}
    latest = epoch_value(spec.objective, status.metrics)
    if status.metrics is not None and latest is not None:
        curve[status.metrics.epoch] = latest
    final = epoch_value(spec.objective, status.final_metrics) if spec.objective.goal == "maximize" else latest
    weights = next((a.uri for a in status.artifacts or [] if a.name == "best.pt"), status.weights_path)
    return TrialRecord(number, name, parameters, state, final if state == "succeeded" else latest,
                       status.metrics.epoch if status.metrics is not None else None, curve, task_id, weights,
                       status.reason or status.message, stopping=stopping)


def _state(status: TrainingStatus) -> TrialState:
    state = task_state(status)
    if state is TaskState.SUCCESS:
        return "succeeded"
    if state is TaskState.FAILURE:
        return "earlyStopped" if status.reason == Reason.EARLY_STOPPED else "failed"
    return "running" if state is TaskState.PROGRESS or status.phase == "Running" else "pending"


@dataclass
class SweepPlan:
    """What to do now: trials to make (number, parameters), trials to stop early, trials to cancel, and the
    status the sweep has once that is done."""

    create: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    stop: list[tuple[TrialRecord, str]] = field(default_factory=list)
    cancel: list[TrialRecord] = field(default_factory=list)
    status: YoloSweepStatus = field(default_factory=YoloSweepStatus)


def plan(spec: YoloSweepSpec, trials: Sequence[TrialRecord], *, cancelled: bool = False) -> SweepPlan:
    """The sweep's next step from its spec and its trials (see the module docstring)."""
    result = SweepPlan()
    unfinished = [t for t in trials if t.state in UNFINISHED]
    if cancelled or spec.suspend:
        result.cancel = [t for t in unfinished if not t.stopping]
    else:
        result.stop = [(t, why) for t, why in early_stops(spec, trials) if not t.stopping]
        taken = {t.number for t in trials}
        free = max(0, spec.parallelism - len(unfinished))
        numbers = [n for n in range(spec.trial_budget()) if n not in taken][:free]
        result.create = [(n, suggest(spec, n, trials)) for n in numbers]
    result.status = summary(spec, trials, cancelled=cancelled, creating=len(result.create))
    return result


def summary(spec: YoloSweepSpec, trials: Sequence[TrialRecord], *, cancelled: bool = False,
            creating: int = 0) -> YoloSweepStatus:
    """The sweep's phase, reason, counts, best trial and bounded trial table."""
    states = Counter(t.state for t in trials)
    counts = SweepCounts(total=len(trials), pending=states["pending"], running=states["running"],
                         succeeded=states["succeeded"], failed=states["failed"], early_stopped=states["earlyStopped"])
    top = best(spec, trials)
    finished = counts.succeeded + counts.failed + counts.early_stopped
    status = YoloSweepStatus(counts=counts, trials=_table(spec, trials), done=f"{finished}/{spec.trial_budget()}",
                             trials_omitted=max(0, len(trials) - TRIAL_TABLE_LIMIT))
    if top is not None and top.objective is not None:
        status.best = BestTrial(trial=top.number, name=top.name, task_id=top.task_id, objective=top.objective,
                                parameters=top.parameters, weights=top.weights)
    unfinished = states["pending"] + states["running"]
    done = not unfinished and not creating
    if cancelled and done:
        status.phase, status.reason = "Failed", Reason.CANCELLED.value
        status.message = f"cancelled after {len(trials)} trial(s), {counts.succeeded} succeeded"
    elif done and (cancelled or len(trials) >= spec.trial_budget()):
        if counts.succeeded:
            status.phase, status.message = "Succeeded", f"{counts.succeeded} of {len(trials)} trial(s) succeeded"
        else:
            causes = Counter(t.reason or "unknown" for t in trials).most_common(3)
            status.phase, status.reason = "Failed", "NoTrialSucceeded"
            status.message = "no trial succeeded: " + "; ".join(f"{n} x {why}"[:300] for why, n in causes)
    elif spec.suspend:
        status.phase, status.reason = "Pending", "Suspended"
        status.message = "suspended: running trials are cancelled and no more start until spec.suspend is false"
    elif cancelled:
        status.phase, status.reason, status.message = "Running", Reason.CANCELLED.value, "cancelling its trials"
    else:
        status.phase = "Running" if states["running"] or len(trials) > unfinished else "Pending"
        waiting = [t for t in trials if t.state == "pending" and t.reason]
        if waiting and not states["running"]:
            status.reason = "TrialsWaiting"
            status.message = f"{len(waiting)} trial(s) waiting: {waiting[0].name}: {waiting[0].reason}"[:1000]
    return status


def _table(spec: YoloSweepSpec, trials: Sequence[TrialRecord]) -> list[TrialRow]:
    def rank(trial: TrialRecord) -> tuple[int, float, int]:
        value = trial.objective if trial.objective is not None else float("-inf") if spec.objective.goal == \
            "maximize" else float("inf")
        return (0 if trial.state in UNFINISHED else 1, -value if spec.objective.goal == "maximize" else value,
                trial.number)

    kept = sorted(trials, key=rank)[:TRIAL_TABLE_LIMIT]
    return [TrialRow(trial=t.number, name=t.name, task_id=t.task_id, state=t.state, objective=t.objective,
                     epoch=t.epoch, parameters=t.parameters) for t in sorted(kept, key=lambda t: t.number)]
