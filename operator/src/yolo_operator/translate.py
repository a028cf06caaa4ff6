"""A pure translator: the Job and its Pods in, the operator's status fields and Events out.

It says why a training waits or ended, in status where users look (``kubectl get yt``, the API), not only
in Events: queued, a pod the API server refuses (the Job controller's FailedCreate: a ResourceQuota),
unschedulable (with the scheduler's message), image pull errors, OOM kills, deadlines, exhausted retries.
It writes only operator-owned fields (the trainer's stage and epochs are never touched), treats the Job
controller's intermediate states (``FailureTarget``, ``SuccessCriteriaMet``, uncounted terminated pods)
as the decision they announce, and never moves a finished training.
"""

from dataclasses import dataclass, field
from typing import Any, Final

from yolo_crd.outcome import RunEnd, finished, gate_condition, reported, verdict
from yolo_crd.status import Condition, Phase, Reason, TrainingStatus, utc_now
from yolo_operator.job_state import creation_may_fail, finishing, live, run_end, unschedulable, waiting

#: The summary condition, Knative's convention for run-to-completion resources: Unknown while pending or
#: running, True on success, False on failure. ``kubectl wait --for=condition=Succeeded`` waits for it.
SUCCEEDED: Final = "Succeeded"
#: For a training that succeeded on its trainer's final report: Unknown while its Job still finishes, then
#: True (the Job completed) or False with the Job's reason (it failed afterwards: the training stands).
JOB_COMPLETE: Final = "JobComplete"

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass
class Observation:
    """What the operator should write (a status merge patch) and tell (Events)."""

    patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def merge_conditions(status: TrainingStatus, *updates: tuple[str, str, str, str]) -> list[dict[str, Any]]:
    """The conditions with each (type, status, reason, message) set, merged by type.

    ``lastTransitionTime`` changes only when a condition's status does, as in ``metav1.Condition``.
    """
    current = {c.type: c.wire() for c in status.conditions or []}
    for kind, state, reason, message in updates:
        old = current.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == state else None
        current[kind] = {"type": kind, "status": state, "reason": reason, "message": message[:1000],
                         "lastTransitionTime": since or utc_now()}
    return list(current.values())


def ended(status: TrainingStatus, phase: Phase, reason: str | None, message: str | None,
          *more: tuple[str, str, str, str]) -> Observation:
    """The patch and Event that finish a training (Succeeded, or Failed with a reason); ``more`` conditions."""
    success = phase == Phase.SUCCEEDED
    summary = reason or "Completed"
    text = message or ("training completed" if success else summary)
    patch = {"phase": phase.value, "reason": reason, "message": message, "completionTime": utc_now(),
             "conditions": merge_conditions(status, (SUCCEEDED, "True" if success else "False", summary, text),
                                            ("Running", "False", summary, text), *more)}
    return Observation(patch, [("Normal" if success else "Warning", "Succeeded" if success else summary, text)])


def with_quality_gate(found: Observation, status: TrainingStatus, spec: dict[str, Any]) -> Observation:
    """``found`` with the ``QualityGate`` condition added when it finishes a training that has success criteria
    (:func:`~yolo_crd.outcome.gate_condition`), so ``kubectl wait --for=condition=QualityGate`` always ends."""
    if not spec.get("successCriteria") or found.patch.get("phase") not in (Phase.SUCCEEDED, Phase.FAILED):
        return found
    written = [Condition.model_validate(c) for c in found.patch.get("conditions") or []]
    base = status.model_copy(update={"conditions": written or status.conditions})
    found.patch["conditions"] = merge_conditions(base, gate_condition(status))
    return found


def observed(found: Observation, status: TrainingStatus, generation: int | None) -> Observation:
    """``found`` with ``observedGeneration`` set to ``generation`` (a reconcile has acted on that spec)."""
    if generation is not None and status.observed_generation != generation:
        found.patch["observedGeneration"] = generation
    return found


def conclude(status: TrainingStatus, end: RunEnd | None, job: dict[str, Any] | None = None,
             pods: list[dict[str, Any]] | None = None) -> Observation | None:
    """Write the contract's :func:`~yolo_crd.outcome.verdict` (None while the training is not over).

    A success concluded from the trainer's final report records what its Job did or does next
    (:data:`JOB_COMPLETE`), so a Job that fails afterwards is told, never turned into a failure.
    """
    if finished(status):
        return None
    found = verdict(status, end)
    if found is None:
        return None
    if found.phase == Phase.FAILED:
        return ended(status, found.phase, found.reason, found.message)
    condition, events = job_end(job, pods or [], status) if job is not None else job_outcome(end)
    result = _succeeded(status, condition)
    result.events += events
    if end is not None and end.succeeded and job is not None:
        result.patch["completionTime"] = (job.get("status") or {}).get("completionTime") or utc_now()
    return result


def job_outcome(end: RunEnd | None) -> tuple[tuple[str, str, str, str], list[Event]]:
    """The :data:`JOB_COMPLETE` condition (and Event) of a succeeded training, given how its Job ended."""
    if end is None:
        return (JOB_COMPLETE, "Unknown", "Finishing", "the trainer reported its success; its Job is finishing"), []
    if end.succeeded:
        return (JOB_COMPLETE, "True", "Completed", "the Job completed"), []
    text = (f"the Job failed after the trainer had stored its weights and final metrics ({end.message or end.reason}); "
            "the training stands as succeeded")
    return (JOB_COMPLETE, "False", end.reason or "Failed", text), [("Warning", "JobFailedAfterSuccess", text)]


def awaits_job(status: TrainingStatus) -> bool:
    """A training that succeeded on its trainer's report while its Job was still running: its Job's end is
    still to be recorded (:data:`JOB_COMPLETE` Unknown)."""
    condition = status.condition(JOB_COMPLETE)
    return status.phase == Phase.SUCCEEDED and condition is not None and condition.status == "Unknown"


def after_success(job: dict[str, Any] | None, pods: list[dict[str, Any]], status: TrainingStatus) -> Observation:
    """Record how the Job of a training that already succeeded ended; the verdict itself never changes."""
    if not awaits_job(status):
        return Observation({})
    condition, events = job_end(job, pods, status)
    if condition[1] == "Unknown":
        return Observation({})
    return Observation({"conditions": merge_conditions(status, condition)}, events)


def job_end(job: dict[str, Any] | None, pods: list[dict[str, Any]], status: TrainingStatus
            ) -> tuple[tuple[str, str, str, str], list[Event]]:
    """The :data:`JOB_COMPLETE` condition of a succeeded training from its Job as it is now: still finishing,
    completed, failed afterwards, stopped (suspended by a late cancel), or gone."""
    if job is None:  # deleted by hand, or by its own TTL before a sync saw it complete: gone, not failed
        gone = "the Job was deleted before it was seen to complete"
        return (JOB_COMPLETE, "False", Reason.JOB_DELETED.value, gone), []
    end = run_end(job, pods, status)
    if end is None and (job.get("spec") or {}).get("suspend") and not live(pods):
        return (JOB_COMPLETE, "False", "Suspended", "the Job was suspended after the trainer had stored its weights "
                                                    "and final metrics; the training stands as succeeded"), []
    return job_outcome(end)


def cancelled(status: TrainingStatus, reason: Reason = Reason.CANCELLED, message: str = "cancelled") -> Observation:
    """A cancel (the API's annotation; a sweep's early stop, with reason EarlyStopped) ends an unfinished training
    as Failed with that reason. A finished one stays, and so does one whose trainer already sent its final report:
    its weights exist, the sync concludes it."""
    if reported(status):
        return Observation({})
    found = conclude(status, RunEnd(False, reason.value, message))
    if found is None:
        return Observation({})
    found.events = [("Normal", reason.value, "training cancelled" if reason == Reason.CANCELLED else message)]
    return found


def invalid(status: TrainingStatus, error: str, reason: Reason = Reason.INVALID_SPEC) -> Observation:
    """A spec the schema let through but the contract (or the API server, or a source) refuses before any
    run: Failed with ``reason`` (InvalidSpec, ModelNotFound), naming each problem."""
    return conclude(status, RunEnd(False, reason.value, error)) or Observation({})


def retold(status: TrainingStatus) -> Observation:
    """A failed training whose trainer's own report arrived after the Job's verdict: let it tell why."""
    trainer = status.training_failure
    if (status.phase != Phase.FAILED or trainer is None or status.reason == trainer.reason
            or status.reason not in (Reason.BACKOFF_LIMIT_EXCEEDED, Reason.INVALID_INPUT)):
        return Observation({})
    return Observation({"reason": trainer.reason, "message": trainer.message,
                        "conditions": merge_conditions(status, (SUCCEEDED, "False", trainer.reason, trainer.message),
                                                       ("Running", "False", trainer.reason, trainer.message))},
                       [("Warning", trainer.reason, trainer.message)])


def _succeeded(status: TrainingStatus, *more: tuple[str, str, str, str]) -> Observation:
    found = ended(status, Phase.SUCCEEDED, None, None, *more)
    metrics = status.final_metrics.wire() if status.final_metrics is not None else {}
    found.events = [("Normal", "Succeeded", f"training completed: {metrics}")]
    return found


def _waiting_for(job: dict[str, Any], pods: list[dict[str, Any]], status: TrainingStatus,
                 refused: str | None) -> Observation | None:
    """Pending with the reason: queued (suspended Job), a pod the API server refuses, unschedulable, or an
    image that cannot be pulled."""
    if (job.get("spec") or {}).get("suspend"):
        text = "suspended: waiting for admission (Kueue) or spec.suspend"
        return Observation({"phase": Phase.PENDING.value, "reason": Reason.QUEUED.value, "message": text,
                            "conditions": merge_conditions(status, ("Suspended", "True", "Suspended", text),
                                                           (SUCCEEDED, "Unknown", "Queued", text))})
    if refused is not None and creation_may_fail(job, pods):
        text = f"the Job controller cannot create the trainer pod and keeps retrying: {' '.join(refused.split())}"
        return Observation({"phase": Phase.PENDING.value, "reason": Reason.FAILED_CREATE.value, "message": text,
                            "conditions": merge_conditions(status, ("Running", "False", "FailedCreate", text),
                                                           (SUCCEEDED, "Unknown", "Pending", text))},
                           [("Warning", Reason.FAILED_CREATE.value, text)])
    if (no_node := unschedulable(pods)) is not None:
        conditions = merge_conditions(status, ("Scheduled", "False", "Unschedulable", no_node),
                                      (SUCCEEDED, "Unknown", "Pending", no_node))
        return Observation({"phase": Phase.PENDING.value, "reason": Reason.UNSCHEDULABLE.value,
                            "message": no_node, "conditions": conditions},
                           [("Warning", "Unschedulable", no_node)])
    if (pulling := waiting(pods)) is not None:
        reason, text = pulling
        return Observation({"phase": Phase.PENDING.value, "reason": reason, "message": text,
                            "conditions": merge_conditions(status, ("Running", "False", reason, text),
                                                           (SUCCEEDED, "Unknown", "Pending", text))},
                           [("Warning", reason, text)])
    return None


def _resumed(status: TrainingStatus) -> list[tuple[str, str, str, str]]:
    suspended = status.condition("Suspended")
    return [("Suspended", "False", "Resumed", "the training was resumed")] if suspended and suspended.status == "True" \
        else []


def _running(job: dict[str, Any], pods: list[dict[str, Any]], status: TrainingStatus) -> Observation | None:
    """Running once a trainer pod runs; Pending while one is starting (scheduled, pulling its image).

    The Job's ``active`` counts pods that are still Pending too: it alone never makes a training Running.
    """
    job_status = job.get("status") or {}
    live = [pod for pod in pods if (pod.get("status") or {}).get("phase") in ("Pending", "Running")]
    running = status.phase == Phase.RUNNING
    if any((pod.get("status") or {}).get("phase") == "Running" for pod in live) or job_status.get("ready"):
        text = "the trainer is running"
        updates = [("Scheduled", "True", "Scheduled", "the trainer pod was scheduled"),
                   ("Running", "True", "PodRunning", text), (SUCCEEDED, "Unknown", "Running", text),
                   *_resumed(status)]
        return Observation({"phase": Phase.RUNNING.value, "reason": None, "message": None,
                            "startTime": status.start_time or job_status.get("startTime") or utc_now(),
                            "conditions": merge_conditions(status, *updates)},
                           [("Normal", "Started", text)])
    if not live or running:
        return None  # a running training's next attempt is starting (a retry, a preempted pod): still Running
    scheduled = any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                    for pod in live for c in (pod.get("status") or {}).get("conditions") or [])
    text = "the trainer pod is starting" + ("" if scheduled else ": waiting for a node")
    updates = [(SUCCEEDED, "Unknown", "Pending", text), *_resumed(status)]
    if scheduled:
        updates.append(("Scheduled", "True", "Scheduled", "the trainer pod was scheduled"))
    return Observation({"phase": Phase.PENDING.value, "reason": None, "message": text,
                        "conditions": merge_conditions(status, *updates)})


def job_was_made(status: TrainingStatus) -> bool:
    """Whether the training's Job was made once: the operator saw it (``jobName``, ``startTime``) or its
    trainer reported (``stage``). Such a Job is never made again, even if the first sync never ran."""
    return status.job_name is not None or status.start_time is not None or status.stage is not None


def without_job(status: TrainingStatus) -> Observation:
    """The training's Job is gone before a verdict (deleted, or removed by its TTL while the operator was
    down): conclude from what the trainer said, never leave it running for ever."""
    named = f" {status.job_name}" if status.job_name else ""
    end = RunEnd(False, Reason.JOB_DELETED.value, f"the training's Job{named} was deleted before the training finished")
    return conclude(status, end) or Observation({})


def observe(job: dict[str, Any] | None, pods: list[dict[str, Any]], status: TrainingStatus,
            refused: str | None = None) -> Observation:
    """Derive the operator's status fields from a Job and its Pods; the patch is empty when nothing changed.

    ``refused`` is the Job controller's latest ``FailedCreate`` message on the Job, read only when
    :func:`creation_may_fail`.
    """
    if finished(status):
        told = retold(status)
        return told if told.patch else changed(after_success(job, pods, status), status)
    if job is None:
        return without_job(status) if job_was_made(status) else Observation({})
    found = (conclude(status, run_end(job, pods, status), job, pods) or _waiting_for(job, pods, status, refused)
             or _running(job, pods, status))
    if found is None:
        if finishing(job) or status.phase == Phase.RUNNING:
            return Observation({})  # pods counted before the verdict, or one attempt replaced by the next
        text = "waiting for the trainer pod"
        found = Observation({"phase": Phase.PENDING.value, "reason": None, "message": text,
                             "conditions": merge_conditions(status, (SUCCEEDED, "Unknown", "Pending", text),
                                                            *_resumed(status))})
    return changed(found, status)


def changed(found: Observation, status: TrainingStatus) -> Observation:
    """``found`` without the fields that already hold their value, and without its Events when none is left."""
    patch = changes(found.patch, status)
    return Observation(patch, found.events if patch else [])


def changes(patch: dict[str, Any], status: TrainingStatus) -> dict[str, Any]:
    """Drop fields that already hold the value; timestamps only count when they are not set yet."""
    current = status.wire()
    stamps = ("startTime", "completionTime")
    changed = {key: value for key, value in patch.items() if key not in stamps and current.get(key) != value}
    if not changed:
        return {}
    for key in stamps:
        if key in patch and not current.get(key):
            changed[key] = patch[key]
    return changed
