"""An in-memory task backend for route tests (no trainer, no cluster), with sweeps."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from yolo_api.backends import History, TaskRecord, filter_state
from yolo_api.backends.sweeps import SweepRecord, trial_rows
from yolo_api.errors import sweep_exists
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus
from yolo_crd.sweep import YoloSweepSpec
from yolo_crd.sweep_status import YoloSweepStatus

TOKEN = "test-token-0123456789abcdef"  # the static API token of route and local tests
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class MemoryBackend:
    def __init__(self) -> None:
        self.records: dict[str, TaskRecord] = {}
        self.submitted: list[YoloTrainingSpec] = []
        self.is_ready = True
        self.version = 0
        self.gpus = 1
        self.logs_by_task: dict[str, str] = {}
        self.files: dict[str, Path] = {}  # artifact uri -> a file this backend can read
        self.sweep_records: dict[str, SweepRecord] = {}
        self.trial_rows: dict[str, list[dict[str, Any]]] = {}  # sweep id -> its trial rows, unsorted
        self.submitted_sweeps: list[tuple[YoloSweepSpec, str | None, str | None]] = []
        self.cancel_concludes = True  # a cancel ends the sweep at once (local); False: it is only requested

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def ready(self) -> bool:
        return self.is_ready

    def put(self, status: dict[str, Any] | None, task_id: str | None = None, spec: dict[str, Any] | None = None,
            **extra: Any) -> str:
        task_id = task_id or str(uuid.uuid4())
        extra.setdefault("namespace", None)
        self.version += 1
        created = self.records[task_id].created_at if task_id in self.records else None
        self.records[task_id] = TaskRecord(version=self.version,
            task_id=task_id, name="t", spec={"epochs": 20, "model": "m.yaml", "data": "d.yaml", **(spec or {})},
            status=TrainingStatus.model_validate(status) if status else None,
            created_at=created or f"2026-01-01T00:{len(self.records) // 60:02d}:{len(self.records) % 60:02d}Z", **extra)
        return task_id

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        self.submitted.append(spec)
        return self.records[self.put(None, namespace=namespace)]

    def lookup(self, task_id: str) -> TaskRecord | None:
        return self.get(task_id)

    def history(self, task_id: str) -> History:
        record = self.records.get(task_id)
        return History(list(record.status.history or []) if record and record.status else [], complete=False)

    def get(self, task_id: str) -> TaskRecord | None:
        return self.records.get(task_id)

    def changed_since(self, version: int) -> list[TaskRecord]:
        return sorted((r for r in self.records.values() if r.version > version), key=lambda r: r.version)

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None,
             state: str | None = None) -> tuple[list[TaskRecord], int]:
        items = sorted((r for r in self.records.values() if namespaces is None or r.namespace in namespaces),
                       key=lambda r: r.created_at, reverse=True)
        items = filter_state(items, state)
        return items[offset:offset + limit], len(items)

    def latest_version(self) -> int:
        return self.version

    def default_gpus(self) -> int:
        return self.gpus

    def logs(self, task_id: str, max_bytes: int) -> str | None:
        text = self.logs_by_task.get(task_id)
        return None if text is None else text[-max_bytes:]

    def namespaces(self) -> set[str]:
        return {r.namespace for r in self.records.values() if r.namespace}

    def namespace_for(self, requested: str | None) -> str | None:
        return requested

    def cancel(self, task_id: str) -> TaskRecord | None:
        record = self.records.get(task_id)
        if record is None or record.state().value in ("success", "failure"):
            return record
        self.version += 1  # concluded at once, as the local backend does (a cluster's operator takes a moment)
        status = (record.status or TrainingStatus()).model_copy(
            update={"phase": Phase.FAILED, "reason": Reason.CANCELLED.value, "message": "cancelled"})
        self.records[task_id] = dataclasses.replace(record, cancelled=True, status=status, version=self.version)
        return self.records[task_id]

    def reaped(self, task_id: str) -> None:
        return None

    def artifact_file(self, task_id: str, uri: str) -> Path | None:
        return self.files.get(uri)

    # -- sweeps ----------------------------------------------------------------------------------------

    def put_sweep(self, spec: dict[str, Any], status: dict[str, Any] | None = None, *, name: str = "s",
                  namespace: str | None = None, sweep_id: str | None = None,
                  trials: list[dict[str, Any]] | None = None) -> str:
        sweep_id = sweep_id or str(uuid.uuid4())
        self.version += 1
        self.sweep_records[sweep_id] = SweepRecord(
            sweep_id=sweep_id, name=name, namespace=namespace, spec=spec,
            status=YoloSweepStatus.model_validate(status or {}), version=self.version,
            created_at=f"2026-01-02T00:{len(self.sweep_records) // 60:02d}:{len(self.sweep_records) % 60:02d}Z")
        self.trial_rows[sweep_id] = list(trials or [])
        return sweep_id

    def submit_sweep(self, spec: YoloSweepSpec, name: str | None, namespace: str | None) -> SweepRecord:
        if name and any(r.name == name and r.namespace == namespace for r in self.sweep_records.values()):
            raise sweep_exists(name, namespace)
        self.submitted_sweeps.append((spec, name, namespace))
        return self.sweep_records[self.put_sweep(spec.wire(), name=name or "sweep-x", namespace=namespace)]

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        return self.sweep_records.get(sweep_id)

    def list_sweeps(self, namespaces: Collection[str] | None = None) -> list[SweepRecord]:
        return sorted((r for r in self.sweep_records.values() if namespaces is None or r.namespace in namespaces),
                      key=lambda r: r.created_at, reverse=True)

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        record = self.sweep_records.get(sweep_id)
        return [] if record is None else trial_rows(record, self.trial_rows[sweep_id])

    def cancel_sweep(self, sweep_id: str) -> SweepRecord | None:
        record = self.sweep_records.get(sweep_id)
        if record is None or record.final():
            return record
        update: dict[str, Any] = {"phase": "Failed", "reason": "Cancelled"} if self.cancel_concludes else \
            {"phase": "Running", "reason": "Cancelled", "message": "cancelling its trials"}
        self.sweep_records[sweep_id] = dataclasses.replace(
            record, cancelled=True, status=record.status.model_copy(update=update))
        return self.sweep_records[sweep_id]


class RecordingSink:
    """A trainer's status sink that keeps every patch; :meth:`state` is the status they make together."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, patch: dict[str, Any]) -> None:
        with self.lock:
            self.patches.append(patch)

    def state(self) -> dict[str, Any]:
        from yolo_trainer.reporter import compose

        merged: dict[str, Any] = {}
        for patch in self.patches:
            merged = compose(merged, patch)
        return {k: v for k, v in merged.items() if v is not None}
