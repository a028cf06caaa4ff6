"""Kopf handlers: thin. Parse, call the pure builders and translator, write through the synchronizer.

Run with ``kopf run -m yolo_operator.handlers --all-namespaces`` (or ``--namespace NS``). Reconciling is
level-triggered: on create, on resume (an operator restart) and on every change, the same function makes
the Job agree with the spec and the annotations (cancel, suspend), whatever was missed meanwhile. Two kopf
indexes, kept from the watches, answer "which training does this Job belong to" and "which trainings are
unfinished" (the periodic resync's list). No handler here needs a finalizer (indexes and event handlers add
none; there are no timers, daemons or deletion handlers), so deleting a training never waits for the
operator: its children go with it through their owner references.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import kopf
from pydantic import ValidationError

from yolo_crd.names import (
    ANNOTATION_CANCEL,
    ANNOTATION_EARLY_STOP,
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_TASK_ID,
    MANAGED_BY,
    PLURAL,
    VERSION,
)
from yolo_crd.outcome import finished, reported
from yolo_crd.sources import SourceError
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Reason, TrainingStatus
from yolo_crd.wire import one_line
from yolo_io.kubeclient import in_cluster_server, load_api_client
from yolo_operator import children, metrics, policy, sweeps, translate
from yolo_operator.gateway import KubeGateway
from yolo_operator.retention import Reaper
from yolo_operator.settings import OperatorSettings
from yolo_operator.sweep_gateway import SweepGateway
from yolo_operator.sync import Synchronizer

log = logging.getLogger(__name__)
CHILDREN = {LABEL_MANAGED_BY: MANAGED_BY}
#: Jobs and Pods are watched with this server-side selector: the API server sends ours only.
CHILD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
#: Events are watched for one story only, server-side: the Job controller could not make a pod of a Job
#: (a ResourceQuota exceeded, a LimitRange violated); nothing else tells (the Job itself does not change).
FAILED_CREATE_SELECTOR = "involvedObject.kind=Job,reason=FailedCreate"
Key = tuple[str, str]  # (namespace, name)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo,
                    unfinished_trainings: kopf.Index[Key, bool] | None = None, **_: Any) -> None:
    """Tune kopf once, build the gateway, the synchronizer and the reaper, start the metrics server and the
    resync (fed by the ``unfinished_trainings`` index, which kopf keeps current from the watch)."""
    config = OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled")
    settings.posting.level = logging.WARNING  # our own Events tell the story; kopf's are noise
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_client_timeout
    settings.queueing.idle_timeout = config.worker_idle_seconds
    settings.watching.label_selectors["batch", "v1", "jobs"] = CHILD_SELECTOR
    settings.watching.label_selectors["v1", "pods"] = CHILD_SELECTOR
    settings.watching.field_selectors["v1", "events"] = FAILED_CREATE_SELECTOR
    memo.config = config
    memo.gateway = KubeGateway(load_api_client())
    memo.syncer = Synchronizer(memo.gateway)
    memo.sweeps = sweeps.SweepController(SweepGateway(memo.gateway.api_client))
    memo.reaper = Reaper(memo.gateway, config.training_ttl_seconds)
    metrics.TRAININGS.clear()
    metrics.SWEEPS.clear()
    memo.metrics_server = metrics.serve(config.metrics_port) if config.metrics_port else None
    if unfinished_trainings is None:  # kopf passes every index to every handler, by the index's name
        raise RuntimeError("kopf did not pass the unfinished_trainings index")
    memo.resync = asyncio.create_task(resync_forever(memo.syncer, unfinished_trainings, config.resync_seconds),
                                      name="resync")


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    """Whether a training has no verdict yet (:func:`yolo_crd.outcome.finished`); an unreadable status counts as
    unfinished, so that the resync looks at it."""
    try:
        return not finished(TrainingStatus.model_validate(dict(status)))
    except ValidationError:
        return True


@kopf.index(GROUP, VERSION, PLURAL, when=_unfinished)
def unfinished_trainings(namespace: str | None, name: str | None, **_: Any) -> dict[Key, bool] | None:
    """(namespace, name) of every unfinished training; kopf drops a training once it is finished or deleted."""
    return {(namespace, name): True} if namespace and name else None


@kopf.index("batch", "v1", "jobs", labels=CHILDREN)
def training_of_job(namespace: str | None, name: str | None, labels: kopf.Labels, **_: Any) -> dict[Key, str] | None:
    """(namespace, Job name) -> the training's name, for the Jobs of ours (FailedCreate Events name the Job)."""
    return {(namespace, name): labels[LABEL_NAME]} if namespace and name and LABEL_NAME in labels else None


async def resync_forever(syncer: Synchronizer, unfinished: Mapping[Key, Any], interval: float) -> None:
    """A safety net for missed events: every unfinished training is re-synced once per ``interval``.

    The requests are spread over the interval (10,000 trainings every 5 minutes is 33 syncs a second,
    not a burst of 10,000), and go through the same coalesced, retried path as event-driven syncs.
    """
    while True:
        keys = list(unfinished)
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
    reaper: Reaper | None = getattr(memo, "reaper", None)
    if reaper is not None:
        await reaper.close()
    if hasattr(memo, "sweeps"):
        await memo.sweeps.queue.close()
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        server.shutdown()
        server.server_close()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def training_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the table of trainings (metrics) and the reaper's schedule from the watch itself; let the
    trainer's success be concluded at once, and a late trainer report tell why."""
    obj = event["object"]
    if hasattr(memo, "reaper"):
        memo.reaper.observe(str(event.get("type") or "ADDED"), obj)
    meta, raw_status, spec = obj.get("metadata") or {}, obj.get("status") or {}, obj.get("spec") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    gpus = spec.get("gpus")
    metrics.TRAININGS.observe(str(event.get("type") or "ADDED"), namespace, name, raw_status.get("phase"),
                              raw_status.get("reason"), gpus if isinstance(gpus, int) else 0)
    if event.get("type") != "DELETED" and hasattr(memo, "syncer") and _news_for_the_verdict(raw_status):
        memo.syncer.request(namespace, name)


def _news_for_the_verdict(raw: dict[str, Any]) -> bool:
    """The trainer's own report changes the verdict: its success (concluded at once, as the API answers it),
    or its failure arriving after the Job's verdict (it then tells why)."""
    if not raw.get("trainingFailure") and raw.get("stage") != "completed":
        return False
    try:
        status = TrainingStatus.model_validate(raw)
    except ValidationError:
        return False
    return (reported(status) and not finished(status)) or bool(translate.retold(status).patch)


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
async def job_event(labels: kopf.Labels, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A Job of ours changed: mirror it into its training's status (retried until it lands)."""
    if namespace and LABEL_NAME in labels and hasattr(memo, "syncer"):
        memo.syncer.request(namespace, labels[LABEL_NAME])


@kopf.on.event("v1", "events")
async def failed_create_event(body: kopf.Body, memo: kopf.Memo, training_of_job: kopf.Index[Key, str] | None = None,
                              **_: Any) -> None:
    """The Job controller could not make the pod of a Job (FAILED_CREATE_SELECTOR): if the Job is ours, say
    why in its training's status (the sync reads the Job's FailedCreate Events)."""
    involved = body.get("involvedObject") or {}
    namespace = str(involved.get("namespace") or "")
    if body.get("reason") != "FailedCreate" or training_of_job is None or not hasattr(memo, "syncer"):
        return
    for training in training_of_job.get((namespace, str(involved.get("name") or "")), []):
        memo.syncer.request(namespace, training)


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
        raise ValueError(f"invalid spec: {one_line(exc)}") from exc


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


async def _job_was_made(gateway: KubeGateway, namespace: str, name: str, seen: TrainingStatus) -> bool:
    """Whether the training's Job was made once, from the status kopf saw or else a fresh read: a Job made
    and gone (deleted, or removed by its TTL) is never made again."""
    if translate.job_was_made(seen):
        return True
    fresh = await asyncio.to_thread(gateway.get_training, namespace, name)
    return translate.job_was_made(TrainingStatus.model_validate((fresh or {}).get("status") or {}))


async def _reconcile(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo) -> None:
    syncer: Synchronizer = memo.syncer
    gateway: KubeGateway = memo.gateway
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    owner = {"name": name, "namespace": namespace, "uid": meta["uid"]}
    current = TrainingStatus.model_validate(dict(status))

    async def fail(observe: Callable[[TrainingStatus], translate.Observation], error: str) -> NoReturn:
        await syncer.write(namespace, name, lambda _t, now: translate.observed(
            translate.Observation({}) if finished(now) else observe(now), now, generation))
        raise kopf.PermanentError(error)

    if (meta.get("labels") or {}).get(LABEL_TASK_ID) != meta["uid"]:  # made with kubectl: make it findable by id
        await asyncio.to_thread(gateway.label_training, namespace, name, {LABEL_TASK_ID: meta["uid"]})
    if finished(current):
        await syncer.sync(namespace, name, generation=generation)
        return
    try:
        parsed = parse_spec(spec)
    except ValueError as exc:
        invalid = str(exc)
        await fail(lambda now: translate.invalid(now, invalid), invalid)
    annotations = meta.get("annotations") or {}
    if annotations.get(ANNOTATION_CANCEL) == "true" or annotations.get(ANNOTATION_EARLY_STOP):
        # a cancel wins over a sweep's early stop: the user asked for it
        reason, why = ((Reason.CANCELLED, "cancelled") if annotations.get(ANNOTATION_CANCEL) == "true"
                       else (Reason.EARLY_STOPPED, annotations[ANNOTATION_EARLY_STOP]))
        await asyncio.to_thread(children.stop_for_cancel, gateway, owner, current)
        await syncer.write(namespace, name, lambda _t, now: translate.observed(
            translate.cancelled(now, reason, why), now, generation))
        return
    if not await _job_was_made(gateway, namespace, name, current):  # (made just before a crash: 409 finds it)
        refused_here = policy.refusal(parsed, memo.config)
        if refused_here is not None:  # an image, Secret or PriorityClass outside the chart's allow-lists: no Job
            denied: str = refused_here
            await fail(lambda now: translate.invalid(now, denied), denied)
        try:
            source = await asyncio.to_thread(children.source_for_new_job, gateway, owner, parsed)
        except SourceError as exc:
            unusable = str(exc)
            await fail(lambda now: translate.invalid(now, unusable, Reason.MODEL_NOT_FOUND), unusable)
        try:
            await asyncio.to_thread(children.ensure, gateway, owner, parsed, memo.config, source)
        except children.Refused as exc:  # the API server refuses what the spec makes: retrying cannot help
            refused = str(exc)
            await fail(lambda now: translate.invalid(now, refused), refused)
    else:  # made before: it follows the spec; a Job that is gone is not made again (the sync concludes)
        await asyncio.to_thread(children.follow_spec, gateway, owner, parsed)
    await syncer.sync(namespace, name, generation=generation)
