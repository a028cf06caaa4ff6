"""An in-memory index of YoloTrainings by task id (``metadata.uid``), fed by one LIST+WATCH.

Every ``GET /task_status`` is answered from here: thousands of pollers cost the API server nothing.
Updates come from the watch thread; reads come from request handlers. Each update replaces a whole
immutable record, so a reader never sees a half-applied change.

The index keeps a slim projection of each resource: no per-epoch history and no conditions, which no poll
needs (the history is fetched on demand for ``/tasks/{id}/metrics``). 10,000 finished trainings then fit
in well under the replica's memory limit. An event older than what the index holds (a consistent read
after an index miss can be ahead of the watch) never replaces the newer record. Changes are logged in
version order, so "what changed since" costs the changes, not a scan of every training. A training that is
a sweep's trial also keeps its link to the sweep (:class:`TrialLink`: the controlling sweep's uid, the trial's
number and parameters), so that a sweep's trials are found without an API-server call.

:class:`SweepIndex` holds the YoloSweeps the same way, fed by a second LIST+WATCH.
"""

import bisect
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from cachetools import TTLCache
from pydantic import ValidationError

from yolo_api.backends import TaskRecord
from yolo_crd.names import (
    ANNOTATION_CANCEL,
    ANNOTATION_EARLY_STOP,
    ANNOTATION_TRIAL_PARAMETERS,
    LABEL_SWEEP,
    LABEL_TRIAL,
    SWEEP_KIND,
)
from yolo_crd.retention import Reaped, tombstone
from yolo_crd.status import TrainingStatus, utc_now

log = logging.getLogger(__name__)

#: Status fields the index leaves out: large, and read only on demand (``/tasks/{id}/metrics``).
HEAVY_FIELDS: Final = ("history", "conditions")
CHANGE_LOG: Final = 20_000
REAPED_LIMIT: Final = 100_000


def version_of(obj: dict[str, Any]) -> int:
    """The object's resourceVersion as a number (etcd's revision; 0 when it is not one)."""
    raw = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(raw) if raw.isdigit() else 0


def record_from_object(obj: dict[str, Any]) -> TaskRecord | None:
    """A slim task record from a YoloTraining object; None (logged) for an object without a uid."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        log.warning("YoloTraining %s/%s has no uid; ignored", meta.get("namespace"), meta.get("name"))
        return None
    raw_status = {key: value for key, value in (obj.get("status") or {}).items() if key not in HEAVY_FIELDS}
    try:
        status = TrainingStatus.model_validate(raw_status) if raw_status else None
    except ValidationError as exc:
        log.warning("status of %s/%s does not parse (%s); shown as pending", meta.get("namespace"),
                    meta.get("name"), exc.errors()[:3])
        status = None
    annotations = meta.get("annotations") or {}
    return TaskRecord(version=version_of(obj), task_id=uid, name=meta.get("name", ""),
                      namespace=meta.get("namespace"), spec=dict(obj.get("spec") or {}), status=status,
                      created_at=meta.get("creationTimestamp", ""),
                      cancelled=annotations.get(ANNOTATION_CANCEL) == "true")


@dataclass(frozen=True)
class TrialLink:
    """What makes a training a sweep's trial: the uid and name of the sweep that controls it, its number and
    parameters, and whether a cancel or an early stop was asked of it."""

    sweep_uid: str
    sweep: str
    number: int
    parameters: dict[str, Any]
    stopping: bool = False


def trial_link(obj: dict[str, Any]) -> TrialLink | None:
    """The trial link of a YoloTraining (its trial label and its controller, a YoloSweep), or None."""
    meta = obj.get("metadata") or {}
    owner = next((ref for ref in meta.get("ownerReferences") or []
                  if ref.get("controller") and ref.get("kind") == SWEEP_KIND), None)
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    try:
        sweep, number = str(labels[LABEL_SWEEP]), int(labels[LABEL_TRIAL])
        parameters = json.loads(annotations.get(ANNOTATION_TRIAL_PARAMETERS) or "{}")
    except (KeyError, ValueError):
        return None
    if owner is None or not owner.get("uid") or not isinstance(parameters, dict):
        return None
    return TrialLink(owner["uid"], sweep, number, parameters,
                     stopping=ANNOTATION_CANCEL in annotations or ANNOTATION_EARLY_STOP in annotations)


class TrainingIndex:
    """Task records by uid; see the module docstring."""

    def __init__(self, reaped_retention: float = 86_400.0) -> None:
        self._records: dict[str, TaskRecord] = {}
        #: finished trainings seen deleted (reaped by their TTL, or by hand), remembered for ``reaped_retention``
        #: seconds so that their task id answers "deleted", not "never existed"
        self._reaped: TTLCache[str, Reaped] = TTLCache(maxsize=REAPED_LIMIT, ttl=reaped_retention)
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.relists = 0
        self._listeners: dict[str, set[Callable[[], None]]] = {}
        self._changes: deque[tuple[int, str]] = deque(maxlen=CHANGE_LOG)  # (version, task id), ascending
        self._links: dict[str, TrialLink] = {}  # task id -> its sweep, for the trainings that are trials

    def replace_all(self, objects: Iterable[dict[str, Any]]) -> None:
        """Swap in the result of a LIST (first start or a relist after 410 Gone)."""
        records: dict[str, TaskRecord] = {}
        links: dict[str, TrialLink] = {}
        for obj in objects:
            record = record_from_object(obj)
            if record is not None:
                records[record.task_id] = record
                if (link := trial_link(obj)) is not None:
                    links[record.task_id] = link
        now = utc_now()
        with self._lock:
            for task_id, gone in self._records.items():  # deleted while the watch was away (410 Gone, a reconnect)
                if task_id not in records:
                    stone = tombstone(task_id, gone.name, gone.namespace, gone.spec, gone.status, now)
                    if stone is not None:
                        self._reaped[task_id] = stone
            self._records, self._links = records, links
            self._changes = deque(sorted((r.version, r.task_id) for r in records.values())[-CHANGE_LOG:],
                                  maxlen=CHANGE_LOG)
            self.relists += 1
            listeners = [callback for group in self._listeners.values() for callback in group]
        self.ready.set()
        self._notify(listeners)

    def apply(self, event_type: str, obj: dict[str, Any], *, from_watch: bool = True) -> TaskRecord | None:
        """Apply one event (ADDED, MODIFIED, DELETED); returns the record now held (None once deleted).

        ``from_watch=False`` (an object read directly, ahead of the watch) updates the record but not the
        change log: the log stays in the watch's order, which list streams resume from.
        """
        record = record_from_object(obj)
        if record is None:
            return None
        with self._lock:
            held = self._records.get(record.task_id)
            if held is not None and record.version and held.version > record.version:
                return held  # older than what we have (the watch is behind a consistent read): keep ours
            if event_type == "DELETED":
                self._records.pop(record.task_id, None)
                self._links.pop(record.task_id, None)
                gone = tombstone(record.task_id, record.name, record.namespace, record.spec, record.status, utc_now())
                if gone is not None:
                    self._reaped[record.task_id] = gone
            else:
                self._records[record.task_id] = record
                if (link := trial_link(obj)) is not None:
                    self._links[record.task_id] = link
            if from_watch:
                self._changes.append((record.version, record.task_id))
            listeners = list(self._listeners.get(record.task_id, ()))
        self._notify(listeners)
        return None if event_type == "DELETED" else record

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Records changed after ``version`` (oldest change first); a scan when the log does not reach back."""
        with self._lock:
            changes = list(self._changes)
            records = self._records
        if changes and changes[0][0] > version and len(changes) == CHANGE_LOG:  # the log lost older changes
            return sorted((r for r in records.values() if r.version > version), key=lambda r: r.version)
        start = bisect.bisect_right(changes, (version, "\uffff"))
        seen: dict[str, TaskRecord] = {}
        for _, task_id in changes[start:]:
            record = records.get(task_id)
            if record is not None and record.version > version:
                seen.pop(task_id, None)
                seen[task_id] = record
        return sorted(seen.values(), key=lambda r: r.version)

    def subscribe(self, task_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the watch thread) whenever the task changes; returns the unsubscribe."""
        with self._lock:
            self._listeners.setdefault(task_id, set()).add(callback)

        def unsubscribe() -> None:
            with self._lock:
                group = self._listeners.get(task_id)
                if group is not None:
                    group.discard(callback)
                    if not group:
                        del self._listeners[task_id]

        return unsubscribe

    @staticmethod
    def _notify(listeners: list[Callable[[], None]]) -> None:
        for callback in listeners:
            try:
                callback()
            except Exception:  # a listener's failure must not stop the watch
                log.exception("a status listener failed")

    def get(self, task_id: str) -> TaskRecord | None:
        """One record, without locking (a dict read is atomic)."""
        return self._records.get(task_id)

    def reaped(self, task_id: str) -> Reaped | None:
        """The tombstone of a finished training this replica saw deleted (within the retention), else None."""
        with self._lock:
            return self._reaped.get(task_id)

    def all(self) -> list[TaskRecord]:
        """A snapshot of every record."""
        with self._lock:
            return list(self._records.values())

    def trials(self, sweep_uid: str) -> list[tuple[TaskRecord, TrialLink]]:
        """The trainings that the sweep ``sweep_uid`` controls, with their links (a scan of the trials only)."""
        with self._lock:
            return [(record, link) for task_id, link in self._links.items()
                    if link.sweep_uid == sweep_uid and (record := self._records.get(task_id)) is not None]

    def latest_version(self) -> int:
        """The highest version the index has seen (0 when empty)."""
        with self._lock:
            return self._changes[-1][0] if self._changes else 0

    def __len__(self) -> int:
        return len(self._records)
