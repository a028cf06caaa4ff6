"""Kopf handlers: thin. Parse, call the pure builders and translator, write through the synchronizer.

Run with ``kopf run -m yolo_operator.handlers --all-namespaces`` (or ``--namespace NS``). Reconciling is
level-triggered: on create, on resume (an operator restart) and on every change, the same function makes
the Job agree with the spec and the annotations (cancel, suspend), whatever was missed meanwhile. No
handler here needs a finalizer (no timers, daemons or deletion handlers), so deleting a training never
waits for the operator: its children go with it through their owner references.
"""

import asyncio
import dataclasses
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from yolo_crd.kubeclient import in_cluster_server, load_api_client
from yolo_crd.locations import source_ref
from yolo_crd.names import (
    ANNOTATION_CANCEL,
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_TASK_ID,
    MANAGED_BY,
    PLURAL,
    VERSION,
)
from yolo_crd.outcome import finished
from yolo_crd.sources import ResolvedSource, SourceError, resolve
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus
from yolo_operator import builders, metrics, translate
from yolo_operator.gateway import KubeGateway, NotOurs, controlled_by
from yolo_operator.settings import OperatorSettings
from yolo_operator.sync import Synchronizer

log = logging.getLogger(__name__)
CHILDREN = {LABEL_MANAGED_BY: MANAGED_BY}
#: Jobs and Pods are watched with this server-side selector: the API server sends ours only.
CHILD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf once, build the gateway and the synchronizer, start the metrics server and the resync."""
    config = OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled")
    settings.posting.level = logging.WARNING  # our own Events tell the story; kopf's are noise
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_client_timeout
    settings.queueing.idle_timeout = config.batch_window
    settings.watching.label_selectors["batch", "v1", "jobs"] = CHILD_SELECTOR
    settings.watching.label_selectors["v1", "pods"] = CHILD_SELECTOR
    memo.config = config
    memo.gateway = KubeGateway(load_api_client())
    memo.syncer = Synchronizer(memo.gateway)
    metrics.TRAININGS.clear()
    memo.metrics_server = metrics.serve(config.metrics_port) if config.metrics_port else None
    memo.resync = asyncio.create_task(resync_forever(memo.syncer, config.resync_seconds), name="resync")


async def resync_forever(syncer: Synchronizer, interval: float) -> None:
    """A safety net for missed events: every unfinished training is re-synced once per ``interval``.

    The requests are spread over the interval (10,000 trainings every 5 minutes is 33 syncs a second,
    not a burst of 10,000), and go through the same coalesced, retried path as event-driven syncs.
    """
    while True:
        keys = metrics.TRAININGS.unfinished()
        if not keys:
            await asyncio.sleep(interval)
        for namespace, name in keys:
            syncer.request(namespace, name)
            await asyncio.sleep(interval / len(keys))


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    """Stop the resync, the queued syncs and the metrics server with the operator."""
    resync: asyncio.Task[None] | None = getattr(memo, "resync", None)
    if resync is not None:
        resync.cancel()
    syncer: Synchronizer | None = getattr(memo, "syncer", None)
    if syncer is not None:
        await syncer.close()
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        server.shutdown()
        server.server_close()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def training_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the table of trainings (metrics, resync) from the watch itself; let a late trainer report tell why."""
    obj = event["object"]
    meta, raw_status, spec = obj.get("metadata") or {}, obj.get("status") or {}, obj.get("spec") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    gpus = spec.get("gpus")
    metrics.TRAININGS.observe(str(event.get("type") or "ADDED"), namespace, name, raw_status.get("phase"),
                              raw_status.get("reason"), gpus if isinstance(gpus, int) else 0)
    if event.get("type") != "DELETED" and raw_status.get("trainingFailure") and hasattr(memo, "syncer"):
        try:
            late = translate.retold(TrainingStatus.model_validate(raw_status)).patch
        except ValidationError:
            late = {}
        if late:
            memo.syncer.request(namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
async def job_event(labels: kopf.Labels, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A Job of ours changed: mirror it into its training's status (retried until it lands)."""
    if namespace and LABEL_NAME in labels and hasattr(memo, "syncer"):
        memo.syncer.request(namespace, labels[LABEL_NAME])


@kopf.on.event("v1", "pods", labels=CHILDREN)
async def pod_event(labels: kopf.Labels, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A trainer Pod changed (scheduled, pulling, running, killed): mirror it too."""
    if namespace and LABEL_NAME in labels and hasattr(memo, "syncer"):
        memo.syncer.request(namespace, labels[LABEL_NAME])


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
async def reconcile(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """Make the trainer's ServiceAccount, Role, RoleBinding and Job agree with the training; derive the status."""
    with metrics.timed("reconcile"):
        await _reconcile(spec, meta, status, memo)


@kopf.on.update(GROUP, VERSION, PLURAL, backoff=10)
async def update(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, diff: kopf.Diff, memo: kopf.Memo,
                 **_: Any) -> None:
    """Say which spec changes cannot act (a Job is immutable), then reconcile (suspend, resume, cancel)."""
    if not finished(TrainingStatus.model_validate(dict(status))):
        training = {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]}}
        for _op, path, _old, _new in diff:
            if path[:1] == ("spec",) and path != ("spec", "suspend"):
                await asyncio.to_thread(memo.gateway.post_event, training, "Warning", "SpecChangeIgnored",
                                        f"{'.'.join(path)} cannot change while the training exists (its Job is "
                                        "immutable); create a new YoloTraining instead")
    with metrics.timed("reconcile"):
        await _reconcile(spec, meta, status, memo)


async def _reconcile(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo) -> None:
    syncer: Synchronizer = memo.syncer
    gateway: KubeGateway = memo.gateway
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    owner = {"name": name, "namespace": namespace, "uid": meta["uid"]}
    if (meta.get("labels") or {}).get(LABEL_TASK_ID) != meta["uid"]:  # made with kubectl: make it findable by id
        await asyncio.to_thread(gateway.label_training, namespace, name, {LABEL_TASK_ID: meta["uid"]})
    if finished(TrainingStatus.model_validate(dict(status))):
        await syncer.sync(namespace, name, generation=generation)
        return
    try:
        parsed = parse_spec(spec)
    except ValueError as exc:
        error = str(exc)
        await syncer.write(namespace, name, lambda _t, current: _observed(translate.invalid(current, error),
                                                                          current, generation))
        raise kopf.PermanentError(error) from exc
    job_name = builders.child_name(owner)
    if (meta.get("annotations") or {}).get(ANNOTATION_CANCEL) == "true":
        job = await asyncio.to_thread(gateway.get_job, namespace, job_name)
        if job is not None and not (job.get("spec") or {}).get("suspend"):
            await asyncio.to_thread(gateway.patch_job, namespace, job_name, {"spec": {"suspend": True}})
        await syncer.write(namespace, name, lambda _t, current: _observed(translate.cancelled(current), current,
                                                                          generation))
        return
    try:
        source = await asyncio.to_thread(_source_for_new_job, gateway, owner, parsed, job_name)
    except SourceError as exc:
        error = str(exc)
        await syncer.write(namespace, name, lambda _t, current: translate.Observation({}) if finished(current) else
                           translate.ended(current, Phase.FAILED, Reason.MODEL_NOT_FOUND.value, error))
        raise kopf.PermanentError(error) from exc
    await asyncio.to_thread(_ensure_children, gateway, owner, parsed, memo.config, source)
    await syncer.sync(namespace, name, generation=generation)


def _source_for_new_job(gateway: KubeGateway, owner: dict[str, str], spec: YoloTrainingSpec,
                        job_name: str) -> ResolvedSource | None:
    """The earlier training's weights when ``spec.model`` names one and the Job is still to be made.

    Resolved once, for the Job's creation: a source deleted after its weights were handed over is no
    longer needed. Unknown, unfinished or failed sources raise :class:`SourceError` (the training fails).
    """
    ref = source_ref(spec.model)
    if ref is None or gateway.get_job(owner["namespace"], job_name) is not None:
        return None
    found = (gateway.get_training(owner["namespace"], ref.value) if ref.kind == "training"
             else gateway.find_training(owner["namespace"], ref.value))
    meta = (found or {}).get("metadata") or {}
    raw = (found or {}).get("status")
    status = TrainingStatus.model_validate(raw) if raw else None
    return resolve(ref, meta.get("uid"), meta.get("name"), (found or {}).get("spec"), status, spec, local=False)


def _observed(found: translate.Observation, status: TrainingStatus, generation: int | None) -> translate.Observation:
    if generation is not None and status.observed_generation != generation:
        found.patch["observedGeneration"] = generation
    return found


def _ensure_children(gateway: KubeGateway, owner: dict[str, str], spec: YoloTrainingSpec,
                     config: OperatorSettings, source: ResolvedSource | None = None) -> None:
    """Create what is missing; make an existing Job's ``suspend`` follow the spec (Kueue owns it when queued).

    A Job that exists already (every reconcile after the first) costs one read, not four refused creates.
    """
    training = {"metadata": owner}
    job = builders.build_training_job(owner, spec, config, source)
    namespace, name = owner["namespace"], job["metadata"]["name"]
    current = gateway.get_job(namespace, name)
    if current is not None and not controlled_by(current, owner["uid"]):
        raise kopf.TemporaryError(f"Job {name} exists and is not owned by this training", delay=30)
    if current is None:
        for build in (builders.build_service_account, builders.build_role, builders.build_role_binding):
            gateway.create(build(owner))
        try:
            created = gateway.create(job)
        except NotOurs as exc:
            raise kopf.TemporaryError(str(exc), delay=30) from exc
        except Exception as exc:
            metrics.JOB_CREATE_FAILURES.labels(metrics.failure_reason(exc)).inc()
            raise
        if created:
            gateway.post_event(training, "Normal", "JobCreated", f"created Job {name}")
            return
        current = gateway.get_job(namespace, name) or {}
    suspended = bool((current.get("spec") or {}).get("suspend"))
    if spec.suspend and not suspended:
        gateway.patch_job(namespace, name, {"spec": {"suspend": True}})
        gateway.post_event(training, "Normal", "Suspended", "training suspended")
    elif not spec.suspend and suspended and not spec.queue_name:
        gateway.patch_job(namespace, name, {"spec": {"suspend": False}})
        gateway.post_event(training, "Normal", "Resumed", "training resumed from its last checkpoint")
