"""The embedded default: trainer subprocesses on this machine, state in SQLite under the state directory.

The backend plays the operator's part and writes only the operator's fields (``phase``, ``reason``,
``message``, ``startTime``, ``completionTime``): why a task waits, was cancelled, or ended without the
trainer saying why. The trainer writes its own fields (stage, epochs, its own failure) through the local
sink, exactly as on a cluster. A task stays ``Pending`` until its trainer reports (the envelope then says
``progress``). The trainer processes (the queue, re-attaching after a restart, explaining a trainer that
died without a word) are ``local_trainers.py``'s. One API at a time owns a state directory (an advisory
lock), so two cannot both run its queue.
"""

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from yolo_api.backends import History, TaskRecord, filter_state, local_retention
from yolo_api.backends.local_host import StateLock, cuda_devices
from yolo_api.backends.local_trainers import Running, TrainerProcesses
from yolo_api.backends.paths import confine_spec_paths
from yolo_api.errors import invalid
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_crd import local_store, ownership
from yolo_crd.history import read_results
from yolo_crd.locations import SourceRef
from yolo_crd.outcome import RunEnd, finished, verdict
from yolo_crd.retention import Reaped
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus

log = logging.getLogger(__name__)

_COLUMNS = "task_id, name, spec, status, created_at, pid, updated_at"


class LocalBackend(TrainerProcesses):
    """See the module docstring."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.runs_dir = self.state_dir / "runs"
        self.logs_dir = self.state_dir / "logs"
        self._conn = local_store.connect(self.state_dir / "state.db")
        self._state_lock = StateLock(self.state_dir)
        self._lock = threading.RLock()
        self._running: dict[str, Running] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
        self._gpus: int | None = settings.local_gpus

    # -- reads ---------------------------------------------------------------------------------------

    @staticmethod
    def _record(row: tuple[Any, ...]) -> TaskRecord:
        task_id, name, spec, status, created_at, _, updated_at = row
        raw = json.loads(status)
        created = dt.datetime.fromtimestamp(created_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return TaskRecord(task_id=task_id, name=name, namespace=None, spec=json.loads(spec),
                          status=TrainingStatus.model_validate(raw) if raw else None, created_at=created,
                          version=round(updated_at * 1_000_000))

    def get(self, task_id: str) -> TaskRecord | None:
        """Read one task from SQLite (WAL: never blocked by a writing trainer)."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)).fetchone()  # noqa: S608
        return None if row is None else self._record(row)

    def lookup(self, task_id: str) -> TaskRecord | None:
        """The same as :meth:`get`: SQLite is the source of truth, shared by every process on this machine."""
        return self.get(task_id)

    def history(self, task_id: str) -> History:
        """Every epoch, from the run's results.csv (the bounded sample in status when there is no file yet)."""
        record = self.get(task_id)
        status = record.status if record else None
        run = Path(status.project_path) if status and status.project_path else self.runs_dir / task_id
        epochs = read_results(run / "results.csv")
        if epochs:
            return History(epochs, complete=True)
        return History(list(status.history or []) if status else [], complete=False)

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Rows written after ``version`` (an index range scan: ``updated_at`` is the version)."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM tasks WHERE updated_at > ? "  # noqa: S608
                                      "ORDER BY updated_at LIMIT 1000", (version / 1_000_000,)).fetchall()
        return [record for record in map(self._record, rows) if record.version > version]

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None,
             state: str | None = None) -> tuple[list[TaskRecord], int]:
        """Tasks newest first. Local tasks belong to no namespace: a namespace filter matches none."""
        if namespaces is not None:
            return [], 0
        order = "ORDER BY created_at DESC, rowid DESC"
        with self._lock:
            if state is not None:  # the state is computed from the status: filtered here, not in SQL
                rows = self._conn.execute(f"SELECT {_COLUMNS} FROM tasks {order}").fetchall()  # noqa: S608
                matching = filter_state(map(self._record, rows), state)
                return matching[offset:offset + limit], len(matching)
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM tasks {order} LIMIT ? OFFSET ?",  # noqa: S608
                                      (limit, offset)).fetchall()
            total = self._conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        return [self._record(row) for row in rows], int(total)

    def latest_version(self) -> int:
        """The version of the last write to any task."""
        with self._lock:
            latest = self._conn.execute("SELECT max(updated_at) FROM tasks").fetchone()[0]
        return round(latest * 1_000_000) if latest else 0

    def namespaces(self) -> set[str]:
        """None: local tasks belong to no namespace."""
        return set()

    def namespace_for(self, requested: str | None) -> str | None:
        """Local tasks belong to no namespace."""
        return None

    def ready(self) -> bool:
        """Ready once the scheduler runs."""
        return self._thread.is_alive()

    def default_gpus(self) -> int:
        """One GPU when this machine has a CUDA device, else the CPU (0)."""
        return 1 if self.gpus_available() else 0

    def gpus_available(self) -> int:
        """CUDA devices the trainer's interpreter sees (``YOLO_API_LOCAL_GPUS`` overrides; asked once)."""
        if self._gpus is None:
            self._gpus = cuda_devices(self.settings.trainer_python)
        return self._gpus

    def log_path(self, task_id: str) -> Path:
        """Where the trainer of ``task_id`` writes its output."""
        return self.logs_dir / f"{task_id}.log"

    def logs(self, task_id: str, max_bytes: int) -> str | None:
        """The end of the trainer's log file."""
        path = self.log_path(task_id)
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")

    # -- writes --------------------------------------------------------------------------------------

    def _patch(self, task_id: str, patch: dict[str, Any]) -> None:
        ownership.check("operator", patch)
        with self._lock:
            local_store.patch_status(self._conn, task_id, patch)

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        """Queue a training; paths must lie inside the allowed roots. It starts when a slot is free."""
        if spec.storage is not None:
            raise invalid([{"loc": ["body", "storage"], "type": "not_supported",
                            "msg": "storage mounts PersistentVolumeClaims: only the kubernetes backend has them; "
                                   "locally, name paths under the allowed roots instead"}])
        if spec.object_storage is not None:
            raise invalid([{"loc": ["body", "object_storage"], "type": "not_supported",
                            "msg": "object_storage names a Kubernetes Secret; locally, trainers use the API's own "
                                   "AWS_* environment variables"}])
        if spec.output is None and self.settings.default_output:
            spec = spec.model_copy(update={"output": self.settings.default_output})
        check_source(spec, self._lookup, namespace=None, local=True)
        available = self.gpus_available() if spec.gpus else 0
        if spec.gpus > available:
            seen = f"only {available} CUDA device(s)" if available else "no CUDA device"
            raise invalid([{"loc": ["body", "gpus"], "type": "gpus_not_available",
                            "msg": f"gpus={spec.gpus}, but this machine has {seen} (local backend): set gpus to "
                                   f"{available} or leave gpus out to train on what there is"}])
        wire = confine_spec_paths(spec.wire(), self.settings.roots())
        task_id = str(uuid.uuid4())
        with self._lock:
            local_store.insert_task(self._conn, task_id, name or "train", wire)
            self._patch(task_id, {"phase": Phase.PENDING.value, "reason": Reason.QUEUED.value,
                                  "message": "waiting for a free trainer slot"})
        self._wake.set()
        record = self.get(task_id)
        assert record is not None
        return record

    def _lookup(self, ref: SourceRef) -> TaskRecord | None:
        return self.get(ref.value) if ref.kind == "task" else None

    def reaped(self, task_id: str) -> Reaped | None:
        """A finished task deleted by ``--retain-days``, remembered for ``reaped_retention_seconds``."""
        with self._lock:
            return local_retention.tombstone(self._conn, task_id, self.settings.reaped_retention_seconds)

    def retire(self) -> Sequence[str]:
        """Delete the finished tasks whose ``--retain-days`` have passed (row, run and log); their ids."""
        days = self.settings.retain_days
        with self._lock:
            return local_retention.retire(self._conn, self.runs_dir, self.logs_dir, days * 86400 if days else None,
                                          dt.datetime.now(dt.UTC))

    def artifact_file(self, task_id: str, uri: str) -> Path | None:
        """An artifact written under the task's own run directory (never a path outside it)."""
        path = Path(uri).resolve()
        return path if path.is_relative_to(self.runs_dir / task_id) and path.is_file() else None

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: the verdict is Failed/Cancelled and the trainer is stopped (SIGTERM, then SIGKILL). Too late
        once the trainer reported its success or the task ended: the verdict stands (:func:`verdict`)."""
        with self._lock:  # the reaper's _finish takes it too: whichever is first decides
            record = self.get(task_id)
            if record is None or finished(record.status):
                return record
            found = verdict(record.status, RunEnd(False, Reason.CANCELLED.value, "cancelled"))
            self._conclude(task_id, found)
            running = self._running.get(task_id) if found is not None and found.phase == Phase.FAILED else None
        if running is not None:
            self._terminate(running)
        return self.get(task_id)

    # -- scheduling ----------------------------------------------------------------------------------

    def claim(self) -> None:
        """Take the state directory's lock (raises ``StateDirInUse`` when another API holds it)."""
        self._state_lock.acquire()

    def start(self) -> None:
        """Take the state directory, recover tasks left by a previous API process, then start scheduling."""
        self.claim()
        log.info("local backend: state in %s, at most %d training(s) at once", self.state_dir,
                 self.settings.max_parallel)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling and say what becomes of running trainers: they keep running, re-attached later."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        running = sorted(self._running.items())
        if running:
            pids = " ".join(f"-{r.pid}" for _, r in running)
            log.warning("%d training(s) keep running without the API (trainer pids %s; logs in %s). Start yolo-api "
                        "again with --state-dir %s to follow them, or stop them with: kill -TERM %s",
                        len(running), ", ".join(str(r.pid) for _, r in running), self.logs_dir, self.state_dir,
                        pids)
        self._state_lock.release()

