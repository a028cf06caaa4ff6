"""A pure translator: the Job and its Pods in, the operator's status fields and Events out.

It says why a training waits or failed, in status where users look (``kubectl get yt``, the API), not
only in Events: unschedulable (with the scheduler's message), image pull errors, OOM kills, deadlines,
exhausted retries. It writes only operator-owned fields and never moves a finished training back.
"""

from dataclasses import dataclass, field
from typing import Any

from yolo_crd.status import Phase, Reason, Stage, TrainingStatus, utc_now

_IMAGE_ERRORS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})


@dataclass
class Observation:
    """What the operator should write (a status merge patch) and tell (Events: type, reason, message)."""

    patch: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _container_states(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def _unschedulable(pods: list[dict[str, Any]]) -> str | None:
    for pod in pods:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                return str(condition.get("message") or "no node can run the trainer")
    return None


def _waiting(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    for pod in pods:
        for state in _container_states(pod):
            waiting = (state.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _IMAGE_ERRORS:
                image = state.get("image", "")
                detail = waiting.get("message") or waiting["reason"]
                return "ImagePullBackOff", f"image {image} cannot be pulled: {detail}"
            if waiting.get("reason") == "CrashLoopBackOff":
                return "CrashLoopBackOff", str(waiting.get("message") or "the trainer keeps crashing")
    return None


def _oom_killed(pods: list[dict[str, Any]]) -> bool:
    for pod in pods:
        for state in _container_states(pod):
            for key in ("state", "lastState"):
                if ((state.get(key) or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return True
    return False


def _last_message(pods: list[dict[str, Any]]) -> str:
    for pod in reversed(pods):
        for state in _container_states(pod):
            terminated = (state.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return " ".join(str(terminated["message"]).split())[-300:]
    return ""


def _running(pods: list[dict[str, Any]]) -> bool:
    return any((pod.get("status") or {}).get("phase") == "Running" for pod in pods)


def _conditions(status: TrainingStatus, kind: str, value: bool, reason: str, message: str) -> list[dict[str, Any]]:
    """The conditions list with ``kind`` set, keeping lastTransitionTime when nothing changed."""
    current = {c.type: c.wire() for c in status.conditions or []}
    old = current.get(kind)
    state = "True" if value else "False"
    if old is None or old.get("status") != state or old.get("reason") != reason:
        current[kind] = {"type": kind, "status": state, "reason": reason, "message": message[:1000],
                         "lastTransitionTime": utc_now()}
    return list(current.values())


def _failure(job: dict[str, Any], pods: list[dict[str, Any]], status: TrainingStatus) -> tuple[str, str]:
    failed = _condition(job, "Failed") or {}
    if status.stage == Stage.FAILED and status.reason:
        return status.reason, status.error or status.reason  # the trainer said why: keep its words
    if failed.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return (Reason.DEADLINE_EXCEEDED.value,
                f"training ran longer than activeDeadlineSeconds ({deadline}s) and was stopped")
    if _oom_killed(pods):
        return (Reason.OOM_KILLED.value, "the trainer was killed for using more memory than its limit: "
                "raise resources.limits.memory or lower batch, imgsz or workers")
    limit = (job.get("spec") or {}).get("backoffLimit")
    detail = _last_message(pods)
    error = f"the trainer failed {limit} retries" + (f": {detail}" if detail else "")
    return Reason.BACKOFF_LIMIT_EXCEEDED.value, error


def observe(job: dict[str, Any] | None, pods: list[dict[str, Any]], status: TrainingStatus) -> Observation:
    """Derive the operator's status fields from a Job and its Pods; the patch is empty when nothing changed."""
    if job is None or status.phase in (Phase.SUCCEEDED, Phase.FAILED):
        return Observation({})
    patch: dict[str, Any] = {}
    events: list[tuple[str, str, str]] = []
    job_status = job.get("status") or {}
    if _condition(job, "Complete"):
        if status.final_metrics is not None:
            patch = {"phase": Phase.SUCCEEDED.value, "reason": None, "error": None, "message": None,
                     "conditions": _conditions(status, "Succeeded", True, "Completed", "training completed")}
            events.append(("Normal", "Succeeded", f"training completed: {status.final_metrics.wire()}"))
        else:
            error = "the trainer exited without reporting final metrics"
            patch = {"phase": Phase.FAILED.value, "reason": Reason.TRAINING_ERROR.value, "error": error,
                     "conditions": _conditions(status, "Failed", True, Reason.TRAINING_ERROR.value, error)}
            events.append(("Warning", "Failed", error))
        patch["completionTime"] = job_status.get("completionTime") or utc_now()
    elif _condition(job, "Failed"):
        reason, error = _failure(job, pods, status)
        patch = {"phase": Phase.FAILED.value, "reason": reason, "error": error, "completionTime": utc_now(),
                 "conditions": _conditions(status, "Failed", True, reason, error)}
        events.append(("Warning", reason, error))
    elif (job.get("spec") or {}).get("suspend"):
        patch = {"phase": Phase.PENDING.value, "stage": Stage.QUEUED.value,
                 "message": "suspended: waiting for admission (Kueue) or spec.suspend"}
    elif (unschedulable := _unschedulable(pods)) is not None:
        patch = {"phase": Phase.PENDING.value, "stage": Stage.SCHEDULING.value,
                 "reason": Reason.UNSCHEDULABLE.value, "message": unschedulable,
                 "conditions": _conditions(status, "Scheduled", False, "Unschedulable", unschedulable)}
        events.append(("Warning", "Unschedulable", unschedulable))
    elif (waiting := _waiting(pods)) is not None:
        reason, error = waiting
        patch = {"phase": Phase.PENDING.value, "reason": reason, "error": error, "message": error,
                 "conditions": _conditions(status, "Running", False, reason, error)}
        events.append(("Warning", reason, error))
    elif _running(pods) or job_status.get("active"):
        patch = {"phase": Phase.RUNNING.value, "message": None,
                 "startTime": status.start_time or job_status.get("startTime") or utc_now(),
                 "conditions": _conditions(status, "Running", True, "PodRunning", "the trainer is running")}
        if status.reason in (Reason.UNSCHEDULABLE, "ImagePullBackOff", "CrashLoopBackOff"):
            patch.update(reason=None, error=None)
        if status.stage in (None, Stage.QUEUED, Stage.SCHEDULING):
            patch["stage"] = Stage.INITIALIZING.value
        events.append(("Normal", "Started", "the trainer is running"))
    else:
        patch = {"phase": Phase.PENDING.value, "stage": Stage.SCHEDULING.value, "message": "waiting for a pod"}
    changed = _changed(patch, status)
    return Observation(changed, events if changed else [])


def _changed(patch: dict[str, Any], status: TrainingStatus) -> dict[str, Any]:
    """Drop fields that already hold the value (and the timestamps that come with them)."""
    current = status.wire()
    changed = {key: value for key, value in patch.items()
               if key not in ("startTime", "completionTime") and current.get(key) != value}
    if not changed:
        return {}
    for key in ("startTime", "completionTime"):
        if key in patch and not current.get(key):
            changed[key] = patch[key]
    return changed
