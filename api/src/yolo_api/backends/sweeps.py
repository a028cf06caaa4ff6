"""Sweeps as the API sees them, in both backends: the record, its views, and what a backend must offer.

On a cluster a sweep is a YoloSweep resource run by the operator, read from a watch-fed index like trainings;
locally the backend runs the same planner (:func:`yolo_crd.sweep_status.plan`) over local trainings and keeps
the sweep in SQLite. Either way a sweep's trials are ordinary tasks (each with its own ``/task_status``), and
the routes see only :class:`SweepBackend` and :class:`SweepRecord`.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from yolo_crd.sweep import YoloSweepSpec
from yolo_crd.sweep_status import YoloSweepStatus

#: A sweep's state as ``GET /sweeps`` filters it: its phase, lower-cased (pending, running, succeeded, failed).
SWEEP_STATES = ("pending", "running", "succeeded", "failed")


@dataclass(frozen=True)
class SweepRecord:
    """One sweep: its id (the resource's uid, or the local id), name, namespace, spec (wire form) and status."""

    sweep_id: str
    name: str
    namespace: str | None
    spec: dict[str, Any]
    status: YoloSweepStatus
    created_at: str
    #: a cancel was asked for (the annotation, or the local flag); the status says when it took effect
    cancelled: bool = False
    version: int = 0

    def state(self) -> str:
        """pending, running, succeeded or failed (a sweep with no status yet is pending)."""
        return (self.status.phase or "Pending").lower()

    def final(self) -> bool:
        """Whether the sweep is over (Succeeded or Failed): no trial starts any more."""
        return self.status.phase in ("Succeeded", "Failed")

    def summary(self) -> dict[str, Any]:
        """One row of ``GET /sweeps``: no trial table."""
        spec = self.spec
        status = self.status
        return {
            "sweep_id": self.sweep_id, "name": self.name, "namespace": self.namespace, "state": self.state(),
            "phase": status.phase or "Pending", "reason": status.reason, "message": status.message,
            "done": status.done, "counts": status.counts.wire() if status.counts else {},
            "best": status.best.wire() if status.best else None, "algorithm": spec.get("algorithm", "random"),
            "objective": spec.get("objective"), "max_trials": spec.get("maxTrials"),
            "parallelism": spec.get("parallelism", 1), "parameters": sorted(spec.get("parameters") or {}),
            "created_at": self.created_at, "started_at": status.start_time, "finished_at": status.completion_time,
            "cancelled": self.cancelled, "version": self.version,
        }

    def detail(self, trials: list[dict[str, Any]]) -> dict[str, Any]:
        """``GET /sweeps/{id}``: the summary, the spec, and every trial (``trials``: one dict per trial task,
        sorted by objective, best first, as :func:`trial_rows` makes them)."""
        return {**self.summary(), "spec": self.spec, "trials": trials}


def trial_rows(record: SweepRecord, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trial rows sorted by objective (best first, then those without one by number)."""
    spec = YoloSweepSpec.model_validate(record.spec)
    sign = -1.0 if spec.objective.goal == "maximize" else 1.0
    return sorted(trials, key=lambda row: (row.get("objective") is None, sign * (row.get("objective") or 0.0),
                                           row.get("trial", 0)))


class SweepBackend(Protocol):
    """What the ``/sweeps`` routes need from a backend (both backends implement it next to TaskBackend)."""

    def submit_sweep(self, spec: YoloSweepSpec, name: str | None, namespace: str | None) -> SweepRecord:
        """Create a sweep; raises ApiError for invalid input (a name taken: 409)."""

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """One sweep from what the backend holds (no remote call)."""

    def list_sweeps(self, namespaces: Collection[str] | None = None) -> list[SweepRecord]:
        """Every sweep (in ``namespaces`` unless None), newest first."""

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """The sweep's trials as rows: ``{"trial", "name", "task_id", "state", "objective", "epoch",
        "parameters", "reason"}`` (state: pending, running, succeeded, failed, earlyStopped), every trial."""

    def cancel_sweep(self, sweep_id: str) -> SweepRecord | None:
        """Cancel: running trials are cancelled and no more start; None when no such sweep."""
