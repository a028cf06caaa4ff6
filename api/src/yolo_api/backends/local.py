"""The embedded default: trainer subprocesses on this machine, state in SQLite under the state directory.

The backend plays the operator's part and writes only the operator's fields (``phase``, ``reason``,
``message``, ``startTime``, ``completionTime``): why a task waits, was cancelled, or ended without the
trainer saying why. The trainer writes its own fields (stage, epochs, its own failure) through the local
sink, exactly as on a cluster. A task stays ``Pending`` until its trainer reports (the envelope then says
``progress``). The trainer processes (the queue, re-attaching after a restart, explaining a trainer that
died without a word) are ``local_trainers.py``'s, sweeps ``local_sweeps.py``'s. One API at a time owns a
state directory (an advisory lock), so two cannot both run its queue.
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
from yolo_api.backends.local_host import StateLock, cuda_devices, log_end
from yolo_api.backends.local_sweeps import LocalSweeps
from yolo_api.backends.local_trainers import QUEUED, TrainerProcesses
from yolo_api.backends.paths import confine_spec_paths, recorded_file, refuse_cluster_fields
from yolo_api.errors import invalid
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_crd import ownership
from yolo_crd.history import parse_results
from yolo_crd.locations import SourceRef
from yolo_crd.outcome import RunEnd, Verdict, finished, gate_condition, verdict
from yolo_crd.retention import Reaped
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus, utc_now
from yolo_io import local_store

log = logging.getLogger(__name__)

_COLUMNS = "task_id, name, spec, status, created_at, pid, updated_at"


class LocalBackend(LocalSweeps):
    """See the module docstring. It is the task store of its trainer processes (:class:`TaskRows`), and runs
    sweeps (:class:`~yolo_api.backends.local_sweeps.LocalSweeps`)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.runs_dir = self.state_dir / "runs"
        self.logs_dir = self.state_dir / "logs"
        self._conn = local_store.connect(self.state_dir / "state.db")
        self._state_lock = StateLock(self.state_dir)
        self.lock = threading.RLock()  # a verdict (finish or cancel) is decided under it: the first one stands
        self.sweep_lock = threading.Lock()
        self._gpus: int | None = settings.local_gpus
        self.trainers = TrainerProcesses(settings, self, self.state_dir, self.runs_dir)

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
        with self.lock:
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
        try:
            epochs = parse_results((run / "results.csv").read_text(encoding="utf-8"))
        except FileNotFoundError:
            epochs = []
        if epochs:
            return History(epochs, complete=True)
        return History(list(status.history or []) if status else [], complete=False)

    def changed_since(self, version: int) -> list[TaskRecord]:
        """Rows written after ``version`` (an index range scan: ``updated_at`` is the version)."""
        with self.lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM tasks WHERE updated_at > ? "  # noqa: S608
                                      "ORDER BY updated_at LIMIT 1000", (version / 1_000_000,)).fetchall()
        return [record for record in map(self._record, rows) if record.version > version]

    def list(self, offset: int, limit: int, namespaces: Collection[str] | None = None,
             state: str | None = None) -> tuple[list[TaskRecord], int]:
        """Tasks newest first. Local tasks belong to no namespace: a namespace filter matches none."""
        if namespaces is not None:
            return [], 0
        order = "ORDER BY created_at DESC, rowid DESC"
        with self.lock:
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
        with self.lock:
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
        return self.trainers.alive()

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
        return log_end(self.log_path(task_id), max_bytes)

    # -- writes --------------------------------------------------------------------------------------

    def write_operator_fields(self, task_id: str, patch: dict[str, Any]) -> None:
        """Merge-patch the operator's status fields (raises ``OwnershipError`` for any other field)."""
        ownership.check("operator", patch)
        with self.lock:
            local_store.patch_status(self._conn, task_id, patch)

    def conclude(self, task_id: str, end: RunEnd) -> Verdict | None:
        """Decide (:func:`verdict`) and write, as the operator would, the verdict on a run that ended: phase,
        reason, message and completion time. None when the task is gone or already had its verdict.

        Under the backend's lock: a cancel and a trainer's end decide one after the other. The trainer process
        writes without that lock; when its final report lands between this read and this write, the store
        refuses Failed (:class:`~yolo_io.local_store.FinalPhaseError`) and the verdict is decided again.
        """
        with self.lock:
            for _ in range(2):
                record = self.get(task_id)
                if record is None or finished(record.status):
                    return None
                found = verdict(record.status, end)
                if found is None:
                    return None
                patch: dict[str, Any] = {"phase": found.phase.value, "reason": found.reason,
                                         "message": found.message, "completionTime": utc_now()}
                if record.spec.get("successCriteria"):  # as the operator does: kubectl's QualityGate, locally
                    kind, state, reason, text = gate_condition(record.status)
                    patch["conditions"] = [{"type": kind, "status": state, "reason": reason, "message": text,
                                            "lastTransitionTime": utc_now()}]
                try:
                    self.write_operator_fields(task_id, patch)
                except local_store.FinalPhaseError:
                    continue
                return found
        return None

    def started_unfinished(self) -> Sequence[tuple[str, int]]:
        """(task id, trainer pid) of every task whose trainer was started and has no verdict yet."""
        with self.lock:
            return local_store.started_unfinished(self._conn)

    def queued(self, limit: int) -> Sequence[tuple[str, str, str]]:
        """(task id, name, spec JSON) of the oldest ``limit`` tasks waiting for a trainer."""
        with self.lock:
            return local_store.queued(self._conn, limit)

    def record_pid(self, task_id: str, pid: int) -> None:
        """Remember which process trains ``task_id`` (to re-attach after a restart)."""
        with self.lock:
            self._conn.execute("UPDATE tasks SET pid = ? WHERE task_id = ?", (pid, task_id))

    def prepare(self, spec: YoloTrainingSpec) -> dict[str, Any]:
        """The checks of a local ``POST /train`` (a 422 naming each field): no cluster-only field, a known source,
        GPUs that exist, paths inside the allowed roots; returns the spec to store (paths absolute)."""
        refuse_cluster_fields(spec)
        if spec.output is None and self.settings.default_output:
            spec = spec.model_copy(update={"output": self.settings.default_output})
        check_source(spec, self.find_source, namespace=None, local=True)
        available = self.gpus_available() if spec.gpus else 0
        if spec.gpus > available:
            seen = f"only {available} CUDA device(s)" if available else "no CUDA device"
            raise invalid([{"loc": ["body", "gpus"], "type": "gpus_not_available",
                            "msg": f"gpus={spec.gpus}, but this machine has {seen} (local backend): set gpus to "
                                   f"{available} or leave gpus out to train on what there is"}])
        return confine_spec_paths(spec.wire(), self.settings.roots(),
                                  allow_downloads=self.settings.trainer_allow_downloads)

    def submit(self, spec: YoloTrainingSpec, name: str | None, namespace: str | None) -> TaskRecord:
        """Queue a training (:meth:`prepare`'s checks first); it starts when a slot is free."""
        task_id = str(uuid.uuid4())
        wire = self.prepare(spec)
        with self.lock:
            local_store.insert_task(self._conn, task_id, name or "train", wire, QUEUED)
        self.trainers.wake()
        record = self.get(task_id)
        assert record is not None
        return record

    def find_source(self, ref: SourceRef) -> TaskRecord | None:
        """The earlier training a ``task/<id>`` model names (locally there are no names to look up)."""
        return self.get(ref.value) if ref.kind == "task" else None

    def reaped(self, task_id: str) -> Reaped | None:
        """A finished task deleted by ``--retain-days``, remembered for ``reaped_retention_seconds``."""
        with self.lock:
            return local_retention.tombstone(self._conn, task_id, self.settings.reaped_retention_seconds)

    def retire(self) -> Sequence[str]:
        """Delete the finished tasks whose ``--retain-days`` have passed (row, run and log); their ids."""
        days = self.settings.retain_days
        with self.lock:  # the rows only: reads of other tasks never wait for a run directory's deletion
            reaped = local_retention.reap_rows(self._conn, days * 86400 if days else None, dt.datetime.now(dt.UTC),
                                               self.settings.reaped_retention_seconds)
        local_retention.remove_files(reaped, self.runs_dir, self.logs_dir)
        return reaped

    def artifact_file(self, task_id: str, uri: str) -> Path | None:
        """The file of one of the task's own artifacts, or None; never a path the task did not record.

        ``uri`` must be in the task's ``status.artifacts`` and be either a file under the task's run directory or
        the dataset YAML the task trained on (its ``data``, confined to the allowed roots at submit): ultralytics
        trains on the user's own YAML, which lies outside the run and is recorded as ``data.yaml``.
        """
        record = self.get(task_id)
        if record is None or record.status is None or uri not in {a.uri for a in record.status.artifacts or []}:
            return None
        return recorded_file(Path(uri), record.spec.get("data"), self.runs_dir, task_id)

    def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel: the verdict is Failed/Cancelled and the trainer is stopped (SIGTERM, then SIGKILL). Too late
        once the trainer reported its success or the task ended: the verdict stands (:func:`verdict`)."""
        found = self.conclude(task_id, RunEnd(False, Reason.CANCELLED.value, "cancelled"))
        if found is not None and found.phase == Phase.FAILED:
            self.trainers.terminate(task_id)
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
        self.trainers.start()

    def stop(self) -> None:
        """Stop scheduling and say which trainers are still alive: they keep running, re-attached later.

        A trainer that ended (a training that just succeeded) is reaped first and never named.
        """
        alive = self.trainers.stop()
        if alive:
            log.warning("%d training(s) keep running without the API (trainer pids %s; logs in %s). Start yolo-api "
                        "again with --state-dir %s to follow them, or stop them with: kill -TERM %s",
                        len(alive), ", ".join(map(str, alive.values())), self.logs_dir, self.state_dir,
                        " ".join(f"-{pid}" for pid in alive.values()))
        self._state_lock.release()

