"""When a finished training is deleted (``spec.ttlSecondsAfterFinished``), and how users learn it was.

``ttlSecondsAfterFinished`` means what it means for a Job or a JobSet, one level up: that many seconds
after the training finishes (its ``completionTime``), the training itself is deleted, and with it its Job
and pods; artifacts in object storage or on volumes stay. The operator deletes on a cluster, the local
backend on one machine (``--retain-days``); the API, which sees the deletion, answers 404 saying the
training was reaped, not that it never existed. One pure rule serves all three.
"""

import datetime as dt
from dataclasses import dataclass

from yolo_crd.outcome import finished
from yolo_crd.status import TrainingStatus


def _instant(stamp: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def reap_at(ttl_seconds: float | None, status: TrainingStatus | None) -> dt.datetime | None:
    """When a training is due for deletion: ``ttl_seconds`` after it finished; None while it runs, when no
    TTL applies, or when its completion time is unknown (it is then kept, never deleted by guess)."""
    if ttl_seconds is None or status is None or not finished(status) or not status.completion_time:
        return None
    done = _instant(status.completion_time)
    return None if done is None else done + dt.timedelta(seconds=ttl_seconds)


def due(ttl_seconds: float | None, status: TrainingStatus | None, now: dt.datetime) -> bool:
    """Whether the training's time is up (a deletion seen now was its reaping, not a user's ``delete``)."""
    at = reap_at(ttl_seconds, status)
    return at is not None and at <= now


@dataclass(frozen=True)
class Reaped:
    """What is left of a finished training that was deleted, for the 404 that explains it."""

    task_id: str
    name: str
    namespace: str | None
    finished_at: str
    deleted_at: str
    ttl_seconds: float | None = None

    def explain(self) -> str:
        """One line for users: what happened, and that the artifacts stay."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        after = f" after its retention of {self.ttl_seconds:g}s" if self.ttl_seconds is not None else ""
        return (f"training {where} finished at {self.finished_at} and was deleted at {self.deleted_at}{after}; "
                "its artifacts in object storage or on its volume are kept")


def tombstone(task_id: str, name: str, namespace: str | None, spec: dict[str, object], status: TrainingStatus | None,
              deleted_at: str) -> Reaped | None:
    """The tombstone of a deleted training: only a finished one is remembered (an unfinished one was
    deleted, not reaped, and answers 404 like any unknown task)."""
    if status is None or not finished(status):
        return None
    ttl = spec.get("ttlSecondsAfterFinished")
    return Reaped(task_id, name, namespace, status.completion_time or "an unknown time", deleted_at,
                  float(ttl) if isinstance(ttl, int) else None)
