"""The local backend's trainer processes: spawn queued tasks, follow them, and say how each one ended.

A mixin of :class:`yolo_api.backends.local.LocalBackend` (which owns the SQLite store and the settings):
at most ``max_parallel`` trainers run; each is a ``python -m yolo_trainer`` in its own session, so an API
restart does not kill it. On start-up a started task whose process is alive is re-attached, and one whose
process is gone is marked failed with a clear error. A trainer that exits writes its own failure; one that
dies without a word (a signal, a crash) is explained here, with where its log is.
"""

import json
import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_api.backends import TaskRecord
from yolo_api.backends.local_host import signal_name, tail
from yolo_api.errors import ApiError
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_crd.locations import SourceRef, source_ref
from yolo_crd.outcome import RunEnd, Verdict, finished, verdict
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, utc_now

log = logging.getLogger(__name__)

UNFINISHED = f"json_extract(status, '$.phase') NOT IN ('{Phase.SUCCEEDED.value}', '{Phase.FAILED.value}')"


@dataclass
class Running:
    """A trainer process this API follows."""

    pid: int
    process: subprocess.Popen[bytes] | None  # None when re-attached after an API restart
    log_path: Path


def pid_alive(pid: int, task_id: str) -> bool:
    """Whether ``pid`` is still this task's trainer (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "yolo_trainer" in cmdline or task_id in cmdline


class TrainerProcesses:
    """The scheduling half of the local backend; see the module docstring."""

    settings: ApiSettings
    state_dir: Path
    runs_dir: Path
    _conn: sqlite3.Connection
    _lock: threading.RLock
    _running: dict[str, Running]
    _wake: threading.Event
    _stopping: threading.Event

    def get(self, task_id: str) -> TaskRecord | None:  # pragma: no cover - the backend's
        """One task (the backend's read)."""
        raise NotImplementedError

    def log_path(self, task_id: str) -> Path:  # pragma: no cover - the backend's
        """Where a trainer writes its output."""
        raise NotImplementedError

    def _patch(self, task_id: str, patch: dict[str, Any]) -> None:  # pragma: no cover - the backend's
        raise NotImplementedError

    def _lookup(self, ref: SourceRef) -> TaskRecord | None:  # pragma: no cover - the backend's
        raise NotImplementedError

    def retire(self) -> Sequence[str]:  # pragma: no cover - the backend's
        """Delete the tasks whose retention passed (the backend's)."""
        raise NotImplementedError

    def running_trainers(self) -> dict[str, int]:
        """Task id → trainer pid of every trainer this API is following."""
        return {task_id: running.pid for task_id, running in self._running.items()}

    def _terminate(self, running: Running) -> None:
        try:
            os.killpg(running.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if running.process is not None:
            try:
                running.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(running.pid, signal.SIGKILL)

    def _recover(self) -> None:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT task_id, pid FROM tasks WHERE pid IS NOT NULL AND {UNFINISHED}").fetchall()  # noqa: S608
        for task_id, pid in rows:
            if pid_alive(int(pid), task_id):
                log.info("re-attached to trainer %s of task %s", pid, task_id)
                self._running[task_id] = Running(int(pid), None, self.log_path(task_id))
            else:
                self._finish(task_id, None, lost=True)

    def _loop(self) -> None:
        next_retire = 0.0
        while not self._stopping.is_set():
            try:
                self._reap()
                self._launch()
                if time.monotonic() >= next_retire:  # --retain-days: once a minute is on time enough
                    next_retire = time.monotonic() + 60
                    self.retire()
            except Exception:  # keep scheduling; the error is logged with its traceback
                log.exception("local scheduler step failed")
            self._wake.wait(self.settings.poll_interval)
            self._wake.clear()

    def _reap(self) -> None:
        for task_id, running in list(self._running.items()):
            if running.process is not None:
                code = running.process.poll()
                if code is None:
                    continue
            elif pid_alive(running.pid, task_id):
                continue
            else:
                code = None
            del self._running[task_id]
            self._finish(task_id, code, log_path=running.log_path)

    def _finish(self, task_id: str, code: int | None, *, lost: bool = False, log_path: Path | None = None) -> None:
        """Write the verdict on a trainer that ended (:func:`yolo_crd.outcome.verdict`): its own report
        decides, and one that died without a word is explained with where its log is.

        Under the backend's lock, like a cancel: whichever comes first decides, the other finds it final.
        """
        with self._lock:
            record = self.get(task_id)
            status = record.status if record else None
            if record is None or finished(status):
                return  # a cancel (or an earlier finish) already gave the verdict
            where = f"its log: {log_path or self.log_path(task_id)} (GET /tasks/{task_id}/logs)"
            if lost:
                end = RunEnd(False, Reason.TRAINER_EXITED.value,
                             f"训练进程已中断 (the trainer process ended while the API was not running); {where}")
            elif code == 0:
                end = RunEnd(True)
            elif code is not None and code < 0:
                end = RunEnd(False, Reason.TRAINER_EXITED.value,
                             f"the trainer was killed by signal {signal_name(-code)}; {where}")
            else:
                last = tail(log_path) if log_path else ""
                end = RunEnd(False, Reason.TRAINER_EXITED.value,
                             f"trainer exited with code {code}" + (f": {last}" if last else "") + f"; {where}")
            self._conclude(task_id, verdict(status, end))

    def _conclude(self, task_id: str, found: Verdict | None) -> None:
        """Write a verdict as the operator would: phase, reason, message and completion time."""
        if found is not None:
            self._patch(task_id, {"phase": found.phase.value, "reason": found.reason, "message": found.message,
                                  "completionTime": utc_now()})

    def _launch(self) -> None:
        free = self.settings.max_parallel - len(self._running)
        if free <= 0:
            return
        with self._lock:  # held while spawning, so a concurrent cancel cannot be overwritten
            rows = self._conn.execute(
                "SELECT task_id, name, spec FROM tasks WHERE json_extract(status, '$.phase') = ? AND pid IS NULL "
                "ORDER BY created_at, rowid LIMIT ?", (Phase.PENDING.value, free)).fetchall()
            for task_id, name, spec in rows:
                self._spawn(task_id, name, spec)

    def _spawn(self, task_id: str, name: str, spec: str) -> None:
        source = None
        raw = json.loads(spec)
        if source_ref(str(raw.get("model", ""))) is not None:  # task/<id>: hand its best.pt to the trainer
            try:  # the source succeeded at submit, and a finished training never changes
                source = check_source(YoloTrainingSpec.model_validate(raw), self._lookup, namespace=None, local=True)
            except ApiError as exc:
                record = self.get(task_id)
                self._conclude(task_id, verdict(record.status if record else None, RunEnd(
                    False, Reason.MODEL_NOT_FOUND.value, str(exc.data["errors"][0]["msg"]))))
                return
        env = {
            **os.environ,
            "YOLO_TRAINER_SINK": "local",
            "YOLO_TRAINER_STATE_DB": str(self.state_dir / "state.db"),
            "YOLO_TRAINER_TASK_ID": task_id,
            "YOLO_TRAINER_NAME": name,
            "YOLO_TRAINER_OUTPUT_DIR": str(self.runs_dir),
            "YOLO_TRAINER_SPEC": spec,
            **({"YOLO_TRAINER_SOURCE": source.model_dump_json(exclude_none=True)} if source else {}),
        }
        log_path = self.log_path(task_id)
        with log_path.open("ab") as output:
            process = subprocess.Popen(
                [self.settings.trainer_python, "-m", "yolo_trainer"], env=env, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._running[task_id] = Running(process.pid, process, log_path)
        with self._lock:
            self._conn.execute("UPDATE tasks SET pid = ? WHERE task_id = ?", (process.pid, task_id))
        # phase stays Pending until the trainer reports: "progress" means a trainer that says what it does
        self._patch(task_id, {"reason": None, "message": "the trainer is starting", "startTime": utc_now()})
        log.info("started trainer %s for task %s", process.pid, task_id)

