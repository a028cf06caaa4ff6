"""The Kubernetes backend: creates YoloTrainings and answers reads from a watch-fed index.

One thread lists the resources once, then watches from the list's resourceVersion. A broken connection
resumes from the last seen resourceVersion; 410 Gone (history compacted) relists. Readiness is false
until the first list is in. Creating and cancelling go through the API server; reads never do.
"""

import logging
import threading
from collections.abc import Callable, Collection
from typing import Any

from yolo_api.backends import TaskRecord, filter_state
from yolo_api.backends.index import TrainingIndex, record_from_object
from yolo_api.errors import invalid
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_crd.kubeclient import load_api_client
from yolo_crd.locations import SourceRef
from yolo_crd.names import ANNOTATION_CANCEL, API_VERSION, GROUP, KIND, PLURAL, VERSION
from yolo_crd.spec import YoloTrainingSpec

log = logging.getLogger(__name__)

#: (apiGroup, resource, verbs) of every API-server call below: the source of the API's RBAC in the chart.
PERMISSIONS = ((GROUP, PLURAL, ("list", "watch", "create", "patch")),)


class KubernetesBackend:
    """See the module docstring."""

    def __init__(self, settings: ApiSettings, api_client: Any = None) -> None:
        from kubernetes import client

        self.settings = settings
        self.index = TrainingIndex()
        self.api_client = api_client or load_api_client()
        self._api = client.CustomObjectsApi(self.api_client)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch_forever, name="yolotrainings-watch", daemon=True)
        self.reconnects = 0

    # -- reads ---------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True once the first LIST has filled the index."""
        return self.index.ready.is_set()

    def get(self, task_id: str) -> TaskRecord | None:
        """From the index; never an API-server call."""
        return self.index.get(task_id)

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Records whose resourceVersion is above ``version`` (a scan of the in-memory index)."""
        return sorted((r for r in self.index.all() if r.version > version), key=lambda r: r.version)

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
        """The highest resourceVersion in the index."""
        return max((r.version for r in self.index.all()), default=0)

    def default_gpus(self) -> int:
        """One GPU: trainings on a cluster run on GPU nodes unless the request says otherwise."""
        return 1

    def logs(self, task_id: str, max_bytes: int) -> str | None:
        """Not served here: the trainer's log is the Job's pod log (kubectl logs job/<jobName>)."""
        from yolo_api.errors import ApiError

        record = self.index.get(task_id)
        job = record.status.job_name if record and record.status else None
        where = f"kubectl logs -n {record.namespace} job/{job}" if record and job else "kubectl logs of its Job"
        raise ApiError(501, "not_served", {"task_id": task_id}, detail=f"the trainer's log is its pod's: {where}")

    def subscribe(self, task_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Be called when the task changes (the SSE endpoint's wake-up); returns the unsubscribe."""
        return self.index.subscribe(task_id, callback)

    # -- writes --------------------------------------------------------------------------------------

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        """Create a YoloTraining (generateName); its uid is the task id."""
        target = self.namespace_for(namespace)
        if spec.storage is None and self.settings.default_storage is not None:
            spec = spec.model_copy(update={"storage": self.settings.default_storage})
        if spec.output is None and self.settings.default_output:
            spec = spec.model_copy(update={"output": self.settings.default_output})
        check_source(spec, lambda ref: self.find_source(ref, target), namespace=target, local=False)
        body = {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"generateName": f"{name or 'train'}-"}, "spec": spec.wire()}
        created = self._api.create_namespaced_custom_object(GROUP, VERSION, target, PLURAL, body)
        self.index.apply("ADDED", created)  # answer polls at once, before the watch event arrives
        record = record_from_object(created)
        assert record is not None
        return record

    def find_source(self, ref: SourceRef, namespace: str) -> TaskRecord | None:
        """The training ``task/<id>`` or ``training/<name>`` names, from the index (the operator checks again)."""
        if ref.kind == "task":
            return self.index.get(ref.value)
        return next((r for r in self.index.all() if r.namespace == namespace and r.name == ref.value), None)

    def artifact_file(self, task_id: str, uri: str) -> None:
        """Never: artifacts outside object storage lie on the trainers' volumes, which the API does not mount."""
        return None

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Mark the training cancelled and suspend its Job; the operator fails it with reason Cancelled."""
        record = self.index.get(task_id)
        if record is None or record.state().value in ("success", "failure"):
            return record
        patch = {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}, "spec": {"suspend": True}}
        updated = self._api.patch_namespaced_custom_object(GROUP, VERSION, record.namespace, PLURAL, record.name, patch)
        self.index.apply("MODIFIED", updated)
        return self.index.get(task_id)

    # -- the watch -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the LIST+WATCH thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the watch thread to stop (it is a daemon: a blocked read does not hold up shutdown)."""
        self._stopping.set()

    def _list_call(self) -> tuple[Any, tuple[Any, ...]]:
        if self.settings.namespace:
            return self._api.list_namespaced_custom_object, (GROUP, VERSION, self.settings.namespace, PLURAL)
        return self._api.list_cluster_custom_object, (GROUP, VERSION, PLURAL)

    def _watch_forever(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        backoff = 0.5
        while not self._stopping.is_set():
            call, args = self._list_call()
            try:
                if version is None:
                    listing = call(*args)
                    self.index.replace_all(listing.get("items") or [])
                    version = listing["metadata"]["resourceVersion"]
                for event in watch.Watch().stream(call, *args, resource_version=version,
                                                  timeout_seconds=self.settings.watch_timeout):
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        raise ApiException(status=int(obj.get("code") or 500), reason=obj.get("reason"))
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event["type"] != "BOOKMARK":
                        self.index.apply(event["type"], obj)
                    if self._stopping.is_set():
                        return
                backoff = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch history expired (410 Gone); relisting")
                    version = None
                    continue
                log.warning("watch of yolotrainings failed (%s %s); retrying in %.1fs", exc.status, exc.reason, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # connection refused/reset: resume from the last version
                self.reconnects += 1
                log.warning("watch of yolotrainings broke (%s); reconnecting in %.1fs", exc, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)
