"""The Kubernetes backend: creates YoloTrainings and answers reads from a watch-fed index.

Polls never call the API server: they are answered from the index (``backends/watch.py`` keeps it).
Two replicas each have their own index, so a task created through one can be missing, for a moment, from
the other's: a miss is checked against the API server (a consistent read by the task-id label, which
``POST /train`` sets and the operator adds to trainings made with kubectl) before answering 404, and the
answer is remembered briefly, so unknown ids cannot flood the API server. The per-epoch history, which
the index leaves out, is read on demand (results.csv in object storage, else the resource) and cached.
Sweeps are served the same way, from a second watch (``backends/kubernetes_sweeps.py``).
"""

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from cachetools import TTLCache

from yolo_api.backends import History, TaskRecord, filter_state
from yolo_api.backends.index import TrainingIndex, record_from_object
from yolo_api.backends.kubernetes_sweeps import KubernetesSweeps, SweepIndex
from yolo_api.backends.watch import TrainingWatch
from yolo_api.errors import ApiError, invalid, unavailable
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_api.storage import StorageError, read_text
from yolo_crd.history import parse_results
from yolo_crd.locations import RESULTS, SourceRef, owned_uri
from yolo_crd.names import ANNOTATION_CANCEL, API_VERSION, GROUP, KIND, LABEL_TASK_ID, PLURAL, SWEEP_PLURAL, VERSION
from yolo_crd.retention import Reaped
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import TrainingStatus
from yolo_crd.sweep import YoloSweepSpec
from yolo_io.kubeclient import load_api_client

log = logging.getLogger(__name__)

#: (apiGroup, resource, verbs) of every API-server call below: the source of the API's RBAC in the chart.
PERMISSIONS = ((GROUP, PLURAL, ("get", "list", "watch", "create", "patch")),
               (GROUP, SWEEP_PLURAL, ("get", "list", "watch", "create", "patch")))


class KubernetesBackend(KubernetesSweeps):
    """See the module docstring."""

    def __init__(self, settings: ApiSettings, api_client: Any = None) -> None:
        from kubernetes import client

        self.settings = settings
        self.index = TrainingIndex(settings.reaped_retention_seconds)
        self.api_client = api_client or load_api_client()
        self._api = client.CustomObjectsApi(self.api_client)
        self.watch = TrainingWatch(self._api, settings, self.index)
        self.sweeps = SweepIndex()
        self.sweep_watch = TrainingWatch(self._api, settings, self.sweeps, plural=SWEEP_PLURAL)
        self._unknown: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=settings.lookup_negative_seconds)
        self._full: TTLCache[str, dict[str, Any]] = TTLCache(maxsize=256, ttl=settings.full_cache_seconds)
        self._texts: TTLCache[str, str] = TTLCache(maxsize=64, ttl=settings.full_cache_seconds)
        self._lookups: list[float] = []  # monotonic times of recent lookups (the rate limit)
        self._lock = threading.Lock()
        self.lookups = 0

    @property
    def reconnects(self) -> int:
        """Watch connections that broke and were resumed."""
        return self.watch.reconnects

    # -- reads ---------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """The first LIST of trainings and of sweeps is in, and both indexes have heard from the API server lately
        (``watch_stale_seconds``)."""
        return (self.index.ready.is_set() and self.watch.fresh() and self.sweeps.ready.is_set()
                and self.sweep_watch.fresh())

    def get(self, task_id: str) -> TaskRecord | None:
        """From the index; never an API-server call."""
        return self.index.get(task_id)

    def lookup(self, task_id: str) -> TaskRecord | None:
        """An index miss, checked against the API server (a task just created through another replica)."""
        record = self.index.get(task_id)
        if record is not None or task_id in self._unknown:
            return record
        with self._lock:
            now = time.monotonic()
            self._lookups = [t for t in self._lookups if now - t < 1.0]
            if len(self._lookups) >= self.settings.lookups_per_second:
                raise unavailable("too many lookups of unknown task ids; retry shortly")
            self._lookups.append(now)
            self.lookups += 1
        call, args = self.watch.list_call()
        found = call(*args, label_selector=f"{LABEL_TASK_ID}={task_id}").get("items") or []
        if not found:
            self._unknown[task_id] = True
            return None
        return self.index.apply("ADDED", found[0], from_watch=False)

    def history(self, task_id: str) -> History:
        """Every epoch from the run's results.csv in object storage when it is there; else the bounded sample
        in the resource's status, read on demand. Both are cached for a few seconds."""
        record = self.index.get(task_id)
        if record is None:
            return History([], complete=False)
        artifacts = record.status.artifacts if record.status and record.status.artifacts else []
        output = record.spec.get("output")
        results = next((a.uri for a in artifacts if a.name == RESULTS and owned_uri(output, task_id, a.uri)), None)
        if results is not None:
            try:
                text = self._texts.get(results)
                if text is None:
                    text = self._texts[results] = read_text(results)
                return History(parse_results(text), complete=True)
            except StorageError as exc:
                log.warning("results.csv of task %s not readable (%s); answering from its status", task_id, exc)
        obj = self._full.get(task_id)
        if obj is None or int(obj["metadata"].get("resourceVersion") or 0) < record.version:
            obj = self._api.get_namespaced_custom_object(GROUP, VERSION, record.namespace, PLURAL, record.name)
            self._full[task_id] = obj
        status = TrainingStatus.model_validate(obj.get("status") or {})
        epochs = list(status.history or [])
        return History(epochs, complete=bool(epochs) and len(epochs) >= (status.current_epoch or 0))

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Records changed after ``version``, from the index's change log."""
        return self.index.changed_since(version)

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None,
             state: str | None = None) -> tuple[list[TaskRecord], int]:
        """From the index, newest first; only the given namespaces when ``namespaces`` is not None."""
        records = self.index.all()
        if namespaces is not None:
            records = [r for r in records if r.namespace in namespaces]
        records = filter_state(records, state)
        records.sort(key=lambda r: (r.created_at, r.name), reverse=True)
        return records[offset : offset + limit], len(records)

    def namespaces(self) -> set[str]:
        """Namespaces that hold at least one training."""
        return {r.namespace for r in self.index.all() if r.namespace}

    def namespace_for(self, requested: str | None) -> str:
        """Where a new training goes: the requested namespace, if this API serves it."""
        target = requested or self.settings.namespace or self.settings.default_namespace
        if self.settings.namespace and target != self.settings.namespace:
            raise invalid([{"loc": ["body", "namespace"], "type": "namespace_not_served",
                            "msg": f"this API serves namespace {self.settings.namespace!r} only"}])
        return target

    def latest_version(self) -> int:
        """The highest resourceVersion the watch has delivered."""
        return self.index.latest_version()

    def default_gpus(self) -> int:
        """One GPU: trainings on a cluster run on GPU nodes unless the request says otherwise."""
        return 1

    def logs(self, task_id: str, max_bytes: int) -> str | None:
        """Not served here: the trainer's log is the Job's pod log (kubectl logs job/<jobName>)."""
        record = self.index.get(task_id)
        job = record.status.job_name if record and record.status else None
        where = f"kubectl logs -n {record.namespace} job/{job}" if record and job else "kubectl logs of its Job"
        raise ApiError(501, "not_served", {"task_id": task_id}, detail=f"the trainer's log is its pod's: {where}")

    def subscribe(self, task_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Be called when the task changes (the SSE endpoint's wake-up); returns the unsubscribe."""
        return self.index.subscribe(task_id, callback)

    # -- writes --------------------------------------------------------------------------------------

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        """Create a YoloTraining (generateName) and label it with its uid, the task id any replica can look up."""
        target = self.namespace_for(namespace)
        spec = self.training_defaults(spec, target)
        body = {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"generateName": f"{name or 'train'}-"}, "spec": spec.wire()}
        created = self._api.create_namespaced_custom_object(GROUP, VERSION, target, PLURAL, body)
        meta = created["metadata"]
        labelled = self._api.patch_namespaced_custom_object(GROUP, VERSION, target, PLURAL, meta["name"], {
            "metadata": {"labels": {LABEL_TASK_ID: meta["uid"]}}})
        record = self.index.apply("ADDED", labelled, from_watch=False) or record_from_object(labelled)
        assert record is not None
        self._unknown.pop(record.task_id, None)
        return record

    def training_defaults(self, spec: YoloTrainingSpec, namespace: str) -> YoloTrainingSpec:
        """The spec with the API's default storage and output where it names none; its source checked (422)."""
        if spec.storage is None and self.settings.default_storage is not None:
            spec = spec.model_copy(update={"storage": self.settings.default_storage})
        if spec.output is None and self.settings.default_output:
            spec = spec.model_copy(update={"output": self.settings.default_output})
        check_source(spec, lambda ref: self.find_source(ref, namespace), namespace=namespace, local=False)
        return spec

    def template_defaults(self, spec: YoloSweepSpec, namespace: str) -> YoloSweepSpec:
        """A sweep's template gets what a training would (:meth:`training_defaults`)."""
        return spec.model_copy(update={"template": self.training_defaults(spec.template, namespace)})

    def find_source(self, ref: SourceRef, namespace: str) -> TaskRecord | None:
        """The training ``task/<id>`` or ``training/<name>`` names, from the index (the operator checks again)."""
        if ref.kind == "task":
            return self.index.get(ref.value)
        return next((r for r in self.index.all() if r.namespace == namespace and r.name == ref.value), None)

    def artifact_file(self, task_id: str, uri: str) -> None:
        """Never: artifacts outside object storage lie on the trainers' volumes, which the API does not mount."""
        return None

    def reaped(self, task_id: str) -> Reaped | None:
        """A finished training this replica's watch saw deleted, for ``reaped_retention_seconds``."""
        return self.index.reaped(task_id)

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Mark the training cancelled and suspend its Job; the operator fails it with reason Cancelled."""
        record = self.index.get(task_id)
        if record is None or record.state().value in ("success", "failure"):
            return record
        patch = {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}, "spec": {"suspend": True}}
        updated = self._api.patch_namespaced_custom_object(GROUP, VERSION, record.namespace, PLURAL, record.name, patch)
        return self.index.apply("MODIFIED", updated, from_watch=False) or self.index.get(task_id)

    # -- the watch -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the LIST+WATCH threads (trainings, sweeps)."""
        self.watch.start()
        self.sweep_watch.start()

    def stop(self) -> None:
        """Stop the watches."""
        self.watch.stop()
        self.sweep_watch.stop()
