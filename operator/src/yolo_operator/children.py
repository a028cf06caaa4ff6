"""A training's children: made once, kept in line with the spec, stopped for a cancel.

The ServiceAccount, Role, RoleBinding and Job are made when the training has no Job yet (``jobName`` is
not in its status). A Job that already exists costs one read and is checked to be this training's. Later
reconciles only make an existing Job's ``suspend`` follow the spec (Kueue owns it when a queue is named);
a Job that has gone (deleted, or removed by its TTL) is never made again: the sync concludes the training
instead. What the API server refuses to create (an invalid name or quantity: 422) is :class:`Refused`,
and the training fails at once with the server's words instead of being retried for ever.
"""

import json
from typing import Any

import kopf

from yolo_crd.locations import source_ref
from yolo_crd.outcome import TaskState, task_state
from yolo_crd.sources import ResolvedSource, resolve
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import TrainingStatus
from yolo_operator import builders, metrics
from yolo_operator.gateway import KubeGateway, NotOurs, controlled_by
from yolo_operator.settings import OperatorSettings


class Refused(Exception):
    """The API server refused a child as invalid (422): the spec makes something it will never accept."""


def _refusal(exc: Exception) -> Refused | None:
    if getattr(exc, "status", None) != 422:
        return None
    try:
        text = json.loads(getattr(exc, "body", "") or "{}").get("message") or ""
    except ValueError:
        text = ""
    return Refused(f"the API server refused the training's {text or 'child object as invalid'}")


def source_for_new_job(gateway: KubeGateway, owner: dict[str, str], spec: YoloTrainingSpec) -> ResolvedSource | None:
    """The earlier training's weights when ``spec.model`` names one and the Job is still to be made.

    Resolved once, for the Job's creation: a source deleted after its weights were handed over is no
    longer needed. Unknown, unfinished or failed sources raise ``SourceError`` (the training fails).
    """
    ref = source_ref(spec.model)
    if ref is None or gateway.get_job(owner["namespace"], builders.child_name(owner)) is not None:
        return None
    found = (gateway.get_training(owner["namespace"], ref.value) if ref.kind == "training"
             else gateway.find_training(owner["namespace"], ref.value))
    meta = (found or {}).get("metadata") or {}
    raw = (found or {}).get("status")
    status = TrainingStatus.model_validate(raw) if raw else None
    return resolve(ref, meta.get("uid"), meta.get("name"), (found or {}).get("spec"), status, spec, local=False)


def ensure(gateway: KubeGateway, owner: dict[str, str], spec: YoloTrainingSpec, config: OperatorSettings,
           source: ResolvedSource | None = None) -> None:
    """Make what is missing; an existing Job must be this training's, and then only follows the spec."""
    training = {"metadata": owner}
    job = builders.build_training_job(owner, spec, config, source)
    namespace, name = owner["namespace"], job["metadata"]["name"]
    current = gateway.get_job(namespace, name)
    if current is not None:
        _check_owner(current, owner)
        _suspend_as_spec(gateway, training, current, spec)
        return
    try:
        for build in (builders.build_service_account, builders.build_role, builders.build_role_binding):
            gateway.create(build(owner))
        created = gateway.create(job)
    except NotOurs as exc:
        raise kopf.TemporaryError(str(exc), delay=30) from exc
    except Exception as exc:
        metrics.JOB_CREATE_FAILURES.labels(metrics.failure_reason(exc)).inc()
        refused = _refusal(exc)
        if refused is not None:
            raise refused from exc
        raise
    if created:
        gateway.post_event(training, "Normal", "JobCreated", f"created Job {name}")
    else:
        _suspend_as_spec(gateway, training, gateway.get_job(namespace, name) or {}, spec)


def follow_spec(gateway: KubeGateway, owner: dict[str, str], spec: YoloTrainingSpec) -> None:
    """Make an existing Job's ``suspend`` follow the spec; a Job that is gone stays gone."""
    current = gateway.get_job(owner["namespace"], builders.child_name(owner))
    if current is not None:
        _check_owner(current, owner)
        _suspend_as_spec(gateway, {"metadata": owner}, current, spec)


def stop_for_cancel(gateway: KubeGateway, owner: dict[str, str], status: TrainingStatus) -> None:
    """Suspend the Job (its pod stops) for a cancel, unless the trainer already reported its success."""
    if task_state(status) is TaskState.SUCCESS:
        return  # too late to cancel: the weights exist, the Job completes
    name = builders.child_name(owner)
    job = gateway.get_job(owner["namespace"], name)
    if job is not None and not (job.get("spec") or {}).get("suspend"):
        gateway.patch_job(owner["namespace"], name, {"spec": {"suspend": True}})


def _check_owner(job: dict[str, Any], owner: dict[str, str]) -> None:
    if not controlled_by(job, owner["uid"]):
        raise kopf.TemporaryError(f"Job {job['metadata']['name']} exists and is not owned by this training", delay=30)


def _suspend_as_spec(gateway: KubeGateway, training: dict[str, Any], job: dict[str, Any],
                     spec: YoloTrainingSpec) -> None:
    namespace, name = training["metadata"]["namespace"], (job.get("metadata") or {}).get("name")
    if not name:
        return
    suspended = bool((job.get("spec") or {}).get("suspend"))
    if spec.suspend and not suspended:
        gateway.patch_job(namespace, name, {"spec": {"suspend": True}})
        gateway.post_event(training, "Normal", "Suspended", "training suspended")
    elif not spec.suspend and suspended and not spec.queue_name:
        gateway.patch_job(namespace, name, {"spec": {"suspend": False}})
        gateway.post_event(training, "Normal", "Resumed", "training resumed from its last checkpoint")
