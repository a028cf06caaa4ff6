"""The local backend's trainer processes: spawn queued tasks, follow them, and say how each one ended.

Owned by :class:`yolo_api.backends.local.LocalBackend`, which is the task store it reads and writes
through (:class:`TaskRows`): at most ``max_parallel`` trainers run; each is a ``python -m yolo_trainer`` in
its own session, so an API restart does not kill it. On start-up a started task whose process is alive is
re-attached, and one whose process is gone is marked failed with a clear error. A trainer that exits writes
its own failure; one that dies without a word (a signal, a crash) is explained here, with where its log is.
"""

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from yolo_api.backends import TaskRecord
from yolo_api.backends.local_host import signal_name, tail
from yolo_api.errors import ApiError
from yolo_api.settings import ApiSettings
from yolo_api.sources import check_source
from yolo_crd.locations import SourceRef, source_ref
from yolo_crd.outcome import RunEnd, Verdict, finished
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, utc_now

log = logging.getLogger(__name__)
#: The status a task is queued with (``POST /train``, a sweep's trial): the scheduler launches Pending tasks.
QUEUED: dict[str, Any] = {"phase": Phase.PENDING.value, "reason": Reason.QUEUED.value,
                          "message": "waiting for a free trainer slot"}


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


class TaskRows(Protocol):
    """What the trainer processes need from the task store (the local backend): rows to read and the
    operator's fields to write, under the lock that a cancel takes too."""

    lock: threading.RLock

    def get(self, task_id: str) -> TaskRecord | None:
        """One task."""

    def log_path(self, task_id: str) -> Path:
        """Where the trainer of ``task_id`` writes its output."""

    def conclude(self, task_id: str, end: RunEnd) -> Verdict | None:
        """Decide the verdict on a run that ended and write it as the operator would; None when none was due."""

    def write_operator_fields(self, task_id: str, patch: dict[str, Any]) -> None:
        """Merge-patch the operator's status fields of one task."""

    def find_source(self, ref: SourceRef) -> TaskRecord | None:
        """The earlier training a ``task/<id>`` model names."""

    def started_unfinished(self) -> Sequence[tuple[str, int]]:
        """(task id, trainer pid) of every task whose trainer was started and has no verdict yet."""

    def queued(self, limit: int) -> Sequence[tuple[str, str, str]]:
        """(task id, name, spec JSON) of the oldest ``limit`` tasks waiting for a trainer."""

    def record_pid(self, task_id: str, pid: int) -> None:
        """Remember which process trains ``task_id`` (to re-attach after a restart)."""

    def retire(self) -> Sequence[str]:
        """Delete the finished tasks whose retention passed; their ids."""

    def step_sweeps(self) -> None:
        """One step of every unfinished sweep (it queues their next trials)."""


class TrainerProcesses:
    """The trainer processes of one state directory: a scheduler thread that launches queued tasks (at most
    ``max_parallel``), follows them, and writes how each one ended; see the module docstring."""

    def __init__(self, settings: ApiSettings, tasks: TaskRows, state_dir: Path, runs_dir: Path) -> None:
        self.settings = settings
        self.tasks = tasks
        self.state_dir = state_dir
        self.runs_dir = runs_dir
        self._running: dict[str, Running] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)

    def start(self) -> None:
        """Re-attach to the trainers a previous API left running (or explain the ones that died), then schedule."""
        self._recover()
        self._thread.start()

    def alive(self) -> bool:
        """Whether the scheduler runs."""
        return self._thread.is_alive()

    def wake(self) -> None:
        """Look at the queue now (a task was submitted), not at the next poll."""
        self._wake.set()

    def stop(self) -> dict[str, int]:
        """Stop scheduling and return the trainers still alive (task id → pid), which keep running.

        Trainers that ended meanwhile are reaped first (their verdict written), so that what is returned
        names only processes that are still there.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if not self._thread.is_alive():  # never beside a scheduler step that is still running
            self._reap()
        return {task_id: running.pid for task_id, running in sorted(self._running.items())}

    def terminate(self, task_id: str) -> None:
        """Stop the trainer of ``task_id`` if this API follows one (SIGTERM to its session, then SIGKILL)."""
        running = self._running.get(task_id)
        if running is not None:
            self._terminate(running)

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
        for task_id, pid in self.tasks.started_unfinished():
            if pid_alive(pid, task_id):
                log.info("re-attached to trainer %s of task %s", pid, task_id)
                self._running[task_id] = Running(pid, None, self.tasks.log_path(task_id))
            else:
                self._finish(task_id, None, lost=True)

    def _loop(self) -> None:
        next_retire = 0.0
        while not self._stopping.is_set():
            try:
                self._reap()
                self.tasks.step_sweeps()  # after the reap, which ended trials; before the launch of new ones
                self._launch()
                if time.monotonic() >= next_retire:  # --retain-days: once a minute is on time enough
                    next_retire = time.monotonic() + 60
                    self.tasks.retire()
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
        with self.tasks.lock:
            record = self.tasks.get(task_id)
            if record is None or finished(record.status):
                return  # a cancel (or an earlier finish) already gave the verdict
            where = f"its log: {log_path or self.tasks.log_path(task_id)} (GET /tasks/{task_id}/logs)"
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
            self.tasks.conclude(task_id, end)

    def _launch(self) -> None:
        free = self.settings.max_parallel - len(self._running)
        if free <= 0:
            return
        with self.tasks.lock:  # held while spawning, so a concurrent cancel cannot be overwritten
            for task_id, name, spec in self.tasks.queued(free):
                self._spawn(task_id, name, spec)

    def _spawn(self, task_id: str, name: str, spec: str) -> None:
        source = None
        raw = json.loads(spec)
        if source_ref(str(raw.get("model", ""))) is not None:  # task/<id>: hand its best.pt to the trainer
            try:  # the source succeeded at submit, and a finished training never changes
                source = check_source(YoloTrainingSpec.model_validate(raw), self.tasks.find_source, namespace=None,
                                      local=True)
            except ApiError as exc:
                self.tasks.conclude(task_id, RunEnd(False, Reason.MODEL_NOT_FOUND.value,
                                                    str(exc.data["errors"][0]["msg"])))
                return
        env = {
            **os.environ,
            "YOLO_TRAINER_SINK": "local",
            "YOLO_TRAINER_STATE_DB": str(self.state_dir / "state.db"),
            "YOLO_TRAINER_TASK_ID": task_id,
            "YOLO_TRAINER_NAME": name,
            "YOLO_TRAINER_OUTPUT_DIR": str(self.runs_dir),
            "YOLO_TRAINER_SPEC": spec,
            "YOLO_TRAINER_ALLOW_DOWNLOADS": str(self.settings.trainer_allow_downloads).lower(),
            **({"YOLO_TRAINER_SOURCE": source.model_dump_json(exclude_none=True)} if source else {}),
        }
        log_path = self.tasks.log_path(task_id)
        with log_path.open("ab") as output:
            process = subprocess.Popen(
                [self.settings.trainer_python, "-m", "yolo_trainer"], env=env, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._running[task_id] = Running(process.pid, process, log_path)
        self.tasks.record_pid(task_id, process.pid)
        # phase stays Pending until the trainer reports: "progress" means a trainer that says what it does
        self.tasks.write_operator_fields(task_id, {"reason": None, "message": "the trainer is starting",
                                                   "startTime": utc_now()})
        log.info("started trainer %s for task %s", process.pid, task_id)

