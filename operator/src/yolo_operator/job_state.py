"""What a Job and its Pods say, read by pure functions: the translator's evidence.

Why a pod waits (unschedulable, an image that cannot be pulled, a container that cannot be created), how
it ended (an OOM kill, its last message), whether the Job controller is still counting ended pods, and,
for a Job with no live pod, the newest ``FailedCreate`` refusal that is still news; and, once its controller
has decided, how the Job ended (:func:`run_end`) in its own account (:func:`failure_cause`).
"""

import datetime as dt
from typing import Any, Final

from yolo_crd.outcome import RunEnd
from yolo_crd.status import Reason, TrainingStatus

_IMAGE_ERRORS: Final = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
_CONFIG_ERRORS: Final = frozenset({"CreateContainerConfigError", "CreateContainerError"})


def job_condition(job: dict[str, Any], *kinds: str) -> dict[str, Any] | None:
    """The Job's first condition of one of ``kinds`` that is True, or None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in kinds and condition.get("status") == "True":
            return dict(condition)
    return None


def container_states(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's container statuses (none before the kubelet reports)."""
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def unschedulable(pods: list[dict[str, Any]]) -> str | None:
    """The scheduler's message when a pod cannot be placed on any node."""
    for pod in pods:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                return str(condition.get("message") or "no node can run the trainer")
    return None


def waiting(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of a container that waits for something a user must fix: an image, a crash loop,
    its configuration (a Secret or one of its keys)."""
    for pod in pods:
        for state in container_states(pod):
            waits = (state.get("state") or {}).get("waiting") or {}
            if waits.get("reason") in _IMAGE_ERRORS:
                detail = waits.get("message") or waits["reason"]
                return Reason.IMAGE_PULL_BACK_OFF.value, f"image {state.get('image', '')} cannot be pulled: {detail}"
            if waits.get("reason") == "CrashLoopBackOff":
                return Reason.CRASH_LOOP_BACK_OFF.value, str(waits.get("message") or "the trainer keeps crashing")
            if waits.get("reason") in _CONFIG_ERRORS:  # e.g. the object-storage Secret or one of its keys
                detail = waits.get("message") or waits["reason"]
                return Reason.CONTAINER_CONFIG_ERROR.value, f"the trainer container cannot be created: {detail}"
    return None


def oom_killed(pod: dict[str, Any]) -> bool:
    """Whether the pod's container was killed for its memory, now or in its last run."""
    return any(((state.get(key) or {}).get("terminated") or {}).get("reason") == "OOMKilled"
               for state in container_states(pod) for key in ("state", "lastState"))


def last_message(pods: list[dict[str, Any]]) -> str:
    """The newest termination message of the pods' containers (the trainer writes its error there)."""
    for pod in reversed(pods):
        for state in container_states(pod):
            terminated = (state.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return " ".join(str(terminated["message"]).split())[-300:]
    return ""


def finishing(job: dict[str, Any]) -> bool:
    """Pods have ended and the Job controller is still counting them: the Job is about to conclude."""
    job_status = job.get("status") or {}
    uncounted = job_status.get("uncountedTerminatedPods") or {}
    return bool(job_status.get("succeeded") or uncounted.get("succeeded") or uncounted.get("failed"))


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that have not ended and are not being deleted."""
    return [pod for pod in pods if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not (pod.get("metadata") or {}).get("deletionTimestamp")]


def creation_may_fail(job: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    """A Job that should have a pod and has none alive (not suspended, not decided, none active: the first
    pod, or the retry after a failed one): the one case where the reason lives only in the Job controller's
    ``FailedCreate`` Events, worth reading them."""
    job_status = job.get("status") or {}
    return not live(pods) and not (job.get("spec") or {}).get("suspend") and not job_status.get("active") \
        and job_condition(job, "Complete", "Failed", "SuccessCriteriaMet", "FailureTarget") is None


def _instant(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def latest_refusal(refusals: list[tuple[str, str]], pods: list[dict[str, Any]]) -> str | None:
    """The newest ``FailedCreate`` message (``refusals``: (time, message) of the Job's Events) that came after
    the newest pod was made: an Event lives an hour, and one from before a pod existed is no longer news."""
    made = [_instant(str(pod["metadata"]["creationTimestamp"])) for pod in pods
            if (pod.get("metadata") or {}).get("creationTimestamp")]
    newest_pod = max(made, default=None)
    fresh = [(_instant(when), message) for when, message in refusals
             if when and (newest_pod is None or _instant(when) > newest_pod)]
    return max(fresh)[1] if fresh else None


def failure_cause(job: dict[str, Any], pods: list[dict[str, Any]], status: TrainingStatus) -> tuple[str, str]:
    """The Job's account of why it failed: a deadline, an OOM kill, input the trainer rejected, retries spent.

    Whether the trainer's own report outranks it is :func:`yolo_crd.outcome.verdict`'s decision.
    """
    failed = job_condition(job, "Failed", "FailureTarget") or {}
    if failed.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        if status.reason == Reason.FAILED_CREATE and not live(pods):
            return (Reason.DEADLINE_EXCEEDED.value,
                    f"no trainer pod could be made before activeDeadlineSeconds ({deadline}s) passed: {status.message}")
        return (Reason.DEADLINE_EXCEEDED.value,
                f"training ran longer than activeDeadlineSeconds ({deadline}s) and was stopped")
    if pods and oom_killed(pods[-1]):
        return (Reason.OOM_KILLED.value, "the trainer was killed for using more memory than its limit: "
                "raise resources.limits.memory or lower batch, imgsz or workers")
    detail = last_message(pods)
    suffix = f": {detail}" if detail else ""
    if failed.get("reason") == "PodFailurePolicy":
        return Reason.INVALID_INPUT.value, f"the trainer rejected its input{suffix}"
    limit = (job.get("spec") or {}).get("backoffLimit")
    return Reason.BACKOFF_LIMIT_EXCEEDED.value, f"the trainer failed {limit} retries{suffix}"


def run_end(job: dict[str, Any], pods: list[dict[str, Any]], status: TrainingStatus) -> RunEnd | None:
    """How the Job ended, once its controller has decided (its final or its intermediate condition)."""
    if job_condition(job, "Complete", "SuccessCriteriaMet"):
        return RunEnd(True)
    if job_condition(job, "Failed", "FailureTarget"):
        return RunEnd(False, *failure_cause(job, pods, status))
    return None
