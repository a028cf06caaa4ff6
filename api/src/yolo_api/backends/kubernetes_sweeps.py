"""Sweeps on a cluster: YoloSweep resources created by ``POST /sweeps`` and read from a watch-fed index.

A second LIST+WATCH (``backends/watch.py``, on ``yolosweeps``) feeds :class:`SweepIndex`, so that ``GET
/sweeps`` and its pollers cost the API server nothing, as trainings do. A sweep's trials are the trainings
that it controls (an ownerReference with its uid, and the label ``yolo-operator.io/sweep=<name>``), found in
the trainings' index (:meth:`yolo_api.backends.index.TrainingIndex.trials`) and turned into rows by the
contract's :func:`yolo_crd.sweep_status.record_of`, the function the operator's planner reads them with.
Cancelling marks the sweep (the annotation ``yolo-operator.io/cancel``) and suspends it (``spec.suspend``,
the change kopf reacts to); the operator cancels its running trials and concludes.
"""

import json
import logging
import threading
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import ValidationError

from yolo_api.backends.index import TrainingIndex, version_of
from yolo_api.backends.sweeps import SweepRecord, trial_rows
from yolo_api.errors import invalid, sweep_exists
from yolo_crd.names import ANNOTATION_CANCEL, API_VERSION, GROUP, SWEEP_KIND, SWEEP_PLURAL, VERSION
from yolo_crd.status import TrainingStatus
from yolo_crd.sweep import YoloSweepSpec
from yolo_crd.sweep_status import YoloSweepStatus, record_of

log = logging.getLogger(__name__)


def sweep_from_object(obj: dict[str, Any]) -> SweepRecord | None:
    """A sweep record from a YoloSweep object; None (logged) for an object without a uid."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        log.warning("YoloSweep %s/%s has no uid; ignored", meta.get("namespace"), meta.get("name"))
        return None
    try:
        status = YoloSweepStatus.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        log.warning("status of sweep %s/%s does not parse (%s); shown as pending", meta.get("namespace"),
                    meta.get("name"), exc.errors()[:3])
        status = YoloSweepStatus()
    return SweepRecord(sweep_id=uid, name=meta.get("name", ""), namespace=meta.get("namespace"),
                       spec=dict(obj.get("spec") or {}), status=status, created_at=meta.get("creationTimestamp", ""),
                       cancelled=(meta.get("annotations") or {}).get(ANNOTATION_CANCEL) == "true",
                       version=version_of(obj))


class SweepIndex:
    """Sweep records by uid, fed by the watch of ``yolosweeps``; each update replaces a whole record."""

    def __init__(self) -> None:
        self._records: dict[str, SweepRecord] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()

    def replace_all(self, objects: Iterable[dict[str, Any]]) -> None:
        """Swap in the result of a LIST."""
        records = {r.sweep_id: r for r in map(sweep_from_object, objects) if r is not None}
        with self._lock:
            self._records = records
        self.ready.set()

    def apply(self, event_type: str, obj: dict[str, Any], *, from_watch: bool = True) -> SweepRecord | None:
        """Apply one event; an object older than the record held (a write's answer ahead of the watch) is ignored."""
        record = sweep_from_object(obj)
        if record is None:
            return None
        with self._lock:
            held = self._records.get(record.sweep_id)
            if held is not None and record.version and held.version > record.version:
                return held
            if event_type == "DELETED":
                self._records.pop(record.sweep_id, None)
                return None
            self._records[record.sweep_id] = record
        return record

    def get(self, sweep_id: str) -> SweepRecord | None:
        """One sweep (a dict read, no lock)."""
        return self._records.get(sweep_id)

    def all(self) -> list[SweepRecord]:
        """A snapshot of every sweep."""
        with self._lock:
            return list(self._records.values())


class KubernetesSweeps:
    """The :class:`yolo_api.backends.sweeps.SweepBackend` half of the Kubernetes backend (mixed into it)."""

    _api: Any
    index: TrainingIndex
    sweeps: SweepIndex

    def namespace_for(self, requested: str | None) -> str:
        """Where a new object goes (the backend's own rule)."""
        raise NotImplementedError

    def template_defaults(self, spec: YoloSweepSpec, namespace: str) -> YoloSweepSpec:
        """The sweep with the backend's defaults applied to its template (the backend's own rule)."""
        raise NotImplementedError

    def submit_sweep(self, spec: YoloSweepSpec, name: str | None, namespace: str | None) -> SweepRecord:
        """Create the YoloSweep (``name``, else generated ``sweep-xxxxx``); 409 when the name is taken."""
        from kubernetes.client.exceptions import ApiException

        target = self.namespace_for(namespace)
        spec = self.template_defaults(spec, target)
        meta = {"name": name} if name else {"generateName": "sweep-"}
        body = {"apiVersion": API_VERSION, "kind": SWEEP_KIND, "metadata": meta, "spec": spec.wire()}
        try:
            created = self._api.create_namespaced_custom_object(GROUP, VERSION, target, SWEEP_PLURAL, body)
        except ApiException as exc:
            if exc.status == 409 and name:
                raise sweep_exists(name, target) from None
            if exc.status == 422:  # the CRD's schema or CEL: the same rules as the model, named by the server
                raise invalid([{"loc": ["body"], "msg": _server_message(exc), "type": "refused"}]) from None
            raise
        record = self.sweeps.apply("ADDED", created, from_watch=False)
        assert record is not None
        return record

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """From the index; never an API-server call."""
        return self.sweeps.get(sweep_id)

    def list_sweeps(self, namespaces: Collection[str] | None = None) -> list[SweepRecord]:
        """From the index, newest first; only the given namespaces unless ``namespaces`` is None."""
        records = [r for r in self.sweeps.all() if namespaces is None or r.namespace in namespaces]
        return sorted(records, key=lambda r: (r.created_at, r.name), reverse=True)

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """Every trial of the sweep, from the trainings' index, sorted by objective (best first)."""
        record = self.sweeps.get(sweep_id)
        if record is None:
            return []
        try:
            spec = YoloSweepSpec.model_validate(record.spec)
        except ValidationError:  # the operator failed it as InvalidSpec: it made no trials
            return []
        rows = []
        for task, link in self.index.trials(sweep_id):
            if link.sweep != record.name or task.namespace != record.namespace:
                continue
            trial = record_of(spec, link.number, task.name, link.parameters, task.status or TrainingStatus(),
                              task_id=task.task_id, stopping=link.stopping)
            rows.append({"trial": trial.number, "name": trial.name, "task_id": trial.task_id, "state": trial.state,
                         "objective": trial.objective, "epoch": trial.epoch, "parameters": trial.parameters,
                         "reason": trial.reason})
        return trial_rows(record, rows)

    def cancel_sweep(self, sweep_id: str) -> SweepRecord | None:
        """Mark the sweep cancelled and suspend it; a finished sweep is left as it is."""
        record = self.sweeps.get(sweep_id)
        if record is None or record.final():
            return record
        patch = {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}, "spec": {"suspend": True}}
        updated = self._api.patch_namespaced_custom_object(GROUP, VERSION, record.namespace, SWEEP_PLURAL,
                                                           record.name, patch)
        return self.sweeps.apply("MODIFIED", updated, from_watch=False) or self.sweeps.get(sweep_id)


def _server_message(exc: Exception) -> str:
    """The API server's message of a refused write (its Status body), else the exception's text."""
    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message") or exc)
    except ValueError:
        return str(exc)
