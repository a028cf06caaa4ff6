"""Kopf handlers: thin. Parse, call the pure builders and translator, go through the gateway.

Run with ``kopf run -m yolo_operator.handlers --all-namespaces`` (or ``--namespace NS``).
"""

import dataclasses
import logging
from typing import Any, cast

import kopf
from pydantic import ValidationError

from yolo_crd.kubeclient import in_cluster_server, load_api_client
from yolo_crd.names import ANNOTATION_CANCEL, GROUP, LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY, PLURAL, VERSION
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, Stage, TrainingStatus, utc_now
from yolo_operator import builders, metrics
from yolo_operator.gateway import KubeGateway
from yolo_operator.settings import OperatorSettings
from yolo_operator.translate import observe

CHILDREN = {LABEL_MANAGED_BY: MANAGED_BY}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf once: progress in annotations (our status schema has no room for kopf's), timeouts."""
    config = OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled")
    settings.posting.level = logging.WARNING  # our own Events tell the story; kopf's are noise
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_client_timeout
    settings.queueing.idle_timeout = config.batch_window
    memo.config = config
    memo.gateway = KubeGateway(load_api_client())
    metrics.TRAININGS.clear()
    memo.metrics_server = metrics.serve(config.metrics_port) if config.metrics_port else None


@kopf.on.cleanup()
def stop_metrics(memo: kopf.Memo, **_: Any) -> None:
    """Stop the metrics server with the operator."""
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        server.shutdown()
        server.server_close()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def count(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the metrics' table of trainings (phase, reason, GPUs) from the watch stream itself."""
    obj = event["object"]
    meta, status, spec = obj.get("metadata") or {}, obj.get("status") or {}, obj.get("spec") or {}
    gpus = spec.get("gpus")
    metrics.TRAININGS.observe(str(event.get("type") or "ADDED"), meta.get("namespace", ""), meta.get("name", ""),
                              status.get("phase"), status.get("reason"), gpus if isinstance(gpus, int) else 0)


@kopf.on.probe(id="apiserver")
def probe(memo: Any, **_: Any) -> bool:
    """Liveness detail for ``kopf run --liveness=http://0.0.0.0:8080/healthz``: the gateway is configured."""
    return hasattr(memo, "gateway")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account at the kubelet's KUBERNETES_SERVICE_HOST/PORT, else KUBECONFIG (read now)."""
    info, server = kopf.login_with_service_account(**kwargs), in_cluster_server()
    if info is not None and server is not None:
        return dataclasses.replace(info, server=server)
    return info or kopf.login_with_kubeconfig(**kwargs)


def _fail_invalid(gateway: KubeGateway, body: kopf.Body, error: str) -> None:
    meta = body["metadata"]
    gateway.patch_status(meta["namespace"], meta["name"], {
        "phase": Phase.FAILED.value, "stage": Stage.FAILED.value, "reason": Reason.INVALID_SPEC.value,
        "error": error, "completionTime": utc_now()})
    kopf.event(body, type="Warning", reason=Reason.INVALID_SPEC.value, message=error)


def parse_spec(spec: Any) -> YoloTrainingSpec:
    """The spec model; a ValidationError becomes one line per problem, with its field."""
    try:
        return YoloTrainingSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise ValueError(f"invalid spec: {problems}") from exc


@kopf.on.resume(GROUP, VERSION, PLURAL, backoff=10)
@kopf.on.create(GROUP, VERSION, PLURAL, backoff=10)
def reconcile(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo,
              **_: Any) -> None:
    """Ensure the trainer's ServiceAccount, Role, RoleBinding and Job exist; then derive the status."""
    with metrics.timed("reconcile"):
        _reconcile(body, spec, meta, status, memo)


def _reconcile(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo) -> None:
    gateway: KubeGateway = memo.gateway
    current = TrainingStatus.model_validate(dict(status))
    if current.phase in (Phase.SUCCEEDED, Phase.FAILED):
        return
    try:
        parsed = parse_spec(spec)
    except ValueError as exc:
        _fail_invalid(gateway, body, str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    owner = {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]}
    for child in (builders.build_service_account(owner), builders.build_role(owner),
                  builders.build_role_binding(owner)):
        gateway.create(child)
    job = builders.build_training_job(owner, parsed, memo.config)
    try:
        created = gateway.create(job)
    except Exception as exc:
        metrics.JOB_CREATE_FAILURES.labels(str(getattr(exc, "status", None) or type(exc).__name__)).inc()
        raise
    if created:
        kopf.event(body, type="Normal", reason="JobCreated", message=f"created Job {job['metadata']['name']}")
    if current.job_name is None:
        gateway.patch_status(owner["namespace"], owner["name"], {
            "phase": Phase.PENDING.value,
            "stage": (Stage.QUEUED if job["spec"]["suspend"] else Stage.SCHEDULING).value,
            "jobName": job["metadata"]["name"], "observedGeneration": meta.get("generation")})
    sync(gateway, owner["namespace"], owner["name"])


def sync(gateway: KubeGateway, namespace: str, name: str) -> None:
    """Re-derive the operator's status fields from the Job and its Pods, and tell what changed in Events."""
    with metrics.timed("sync"):
        _sync(gateway, namespace, name)


def _sync(gateway: KubeGateway, namespace: str, name: str) -> None:
    training = gateway.get_training(namespace, name)
    if training is None:
        return
    status = TrainingStatus.model_validate(training.get("status") or {})
    job = gateway.get_job(namespace, builders.child_name(name))
    observation = observe(job, gateway.list_pods(namespace, name) if job else [], status)
    if observation.patch:
        gateway.patch_status(namespace, name, observation.patch)
        for kind, reason, message in observation.events:
            kopf.event(cast(kopf.Body, training), type=kind, reason=reason, message=message)


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
def job_event(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    """A Job of ours changed: mirror it into its training's status."""
    if namespace and LABEL_NAME in labels and hasattr(memo, "gateway"):
        sync(memo.gateway, namespace, labels[LABEL_NAME])


@kopf.on.event("v1", "pods", labels=CHILDREN)
def pod_event(labels: kopf.Labels, namespace: str | None, memo: Any, **_: Any) -> None:
    """A trainer Pod changed (scheduled, pulling, running, killed): mirror it too."""
    if namespace and LABEL_NAME in labels and hasattr(memo, "gateway"):
        sync(memo.gateway, namespace, labels[LABEL_NAME])


# Decorator arguments are fixed at import time, before settings are read: the period is a constant.
# Five minutes: Job and Pod events are the primary path (kopf relists after a broken watch), and at
# 10,000 trainings a one-minute resync alone would cost the API server 500 requests/s (bench/scale.py).
@kopf.timer(GROUP, VERSION, PLURAL, interval=300.0, idle=30.0)
def resync(namespace: str | None, name: str, status: kopf.Status, memo: Any, **_: Any) -> None:
    """A safety net for missed events: re-derive the status of unfinished trainings now and then."""
    if namespace and status.get("phase") not in (Phase.SUCCEEDED.value, Phase.FAILED.value):
        sync(memo.gateway, namespace, name)


@kopf.on.update(GROUP, VERSION, PLURAL)
def update(body: kopf.Body, meta: kopf.Meta, diff: kopf.Diff, status: kopf.Status, memo: kopf.Memo,
           **_: Any) -> None:
    """Suspend/resume and cancel act on the Job; other spec changes cannot (a Job is immutable)."""
    gateway: KubeGateway = memo.gateway
    namespace, name = meta["namespace"], meta["name"]
    job_name = builders.child_name(name)
    cancelled = (meta.get("annotations") or {}).get(ANNOTATION_CANCEL) == "true"
    finished = status.get("phase") in (Phase.SUCCEEDED.value, Phase.FAILED.value)
    if cancelled and not finished:
        gateway.patch_job(namespace, job_name, {"spec": {"suspend": True}})
        gateway.patch_status(namespace, name, {"phase": Phase.FAILED.value, "stage": Stage.FAILED.value,
                                               "reason": Reason.CANCELLED.value, "error": "cancelled",
                                               "completionTime": utc_now()})
        kopf.event(body, type="Normal", reason=Reason.CANCELLED.value, message="training cancelled")
        return
    for _op, path, _old, new in diff:
        if path[:1] != ("spec",) or finished:
            continue
        if path == ("spec", "suspend"):
            gateway.patch_job(namespace, job_name, {"spec": {"suspend": bool(new)}})
            kopf.event(body, type="Normal", reason="Suspended" if new else "Resumed",
                       message="training suspended" if new else "training resumed from its last checkpoint")
        else:
            kopf.event(body, type="Warning", reason="SpecChangeIgnored",
                       message=f"{'.'.join(path)} cannot change while the training exists (its Job is immutable); "
                               "create a new YoloTraining instead")
    sync(gateway, namespace, name)
