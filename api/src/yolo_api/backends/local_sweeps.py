"""Sweeps in the local backend: the same planner as the operator's, over local trainings, state in SQLite.

A sweep is a row of ``sweeps``; each of its trials is a row of ``trials`` (number, parameters, task id) and an
ordinary local task named ``<sweep>-<nnn>``, checked as ``POST /train`` checks a training, queued under
``--max-parallel`` with every other task and answering its own ``/task_status``. A step does what the
operator's :class:`yolo_operator.sweeps.SweepController` does: read the trials, ask
:func:`yolo_crd.sweep_status.plan`, cancel or stop trials early (the verdict, then the trainer's end), make the
next trials, write the sweep's status. The scheduler takes a step of every unfinished sweep on each tick, so
that an API restarted at any moment carries on from the tables alone; the trials' primary key (sweep, number),
written with the trial's task in one transaction, makes each number exist at most once.
"""

import abc
import datetime as dt
import logging
import sqlite3
import threading
import uuid
from collections.abc import Collection
from typing import Any, Final, cast

from pydantic import ValidationError

from yolo_api.backends import TaskRecord
from yolo_api.backends.local_trainers import QUEUED, TrainerProcesses
from yolo_api.backends.sweeps import SweepRecord, trial_rows
from yolo_api.errors import ApiError, invalid
from yolo_crd.names import SWEEP_NAME_MAX, trial_name
from yolo_crd.outcome import RunEnd, Verdict
from yolo_crd.search import TrialRecord, TrialState
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, Reason, TrainingStatus, utc_now
from yolo_crd.sweep import YoloSweepSpec, trial_spec
from yolo_crd.sweep_status import YoloSweepStatus, plan, record_of, summary
from yolo_crd.wire import one_line
from yolo_io import local_store

log = logging.getLogger(__name__)
FINAL_PHASES: Final = ("Succeeded", "Failed")
_ENDED: Final = ("succeeded", "failed", "earlyStopped")


def _refusals(exc: ApiError, loc: list[Any]) -> list[dict[str, Any]]:
    """The errors of a 422 about a training, placed under ``loc`` of the sweep's body."""
    return [{**error, "loc": ["body", *loc, *error["loc"][1:]]} for error in exc.data.get("errors", [])]


class LocalSweeps(abc.ABC):
    """The :class:`~yolo_api.backends.sweeps.SweepBackend` half of the local backend (see the module docstring).

    :class:`~yolo_api.backends.local.LocalBackend` provides the store, its locks, the trainer processes and
    the task operations below; a sweep only ever acts on its trials through them.
    """

    _conn: sqlite3.Connection
    lock: threading.RLock  # the store's lock (a verdict is decided under it)
    sweep_lock: threading.Lock  # one sweep step at a time (the scheduler's, or a cancel's)
    trainers: TrainerProcesses

    @abc.abstractmethod
    def prepare(self, spec: YoloTrainingSpec) -> dict[str, Any]:
        """The checks of a local ``POST /train`` (422 naming each field); the spec to store, paths absolute."""

    @abc.abstractmethod
    def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel one task (its verdict, then its trainer's end)."""

    @abc.abstractmethod
    def conclude(self, task_id: str, end: RunEnd) -> Verdict | None:
        """Write the verdict on a task whose run ended; None when none was due."""

    # -- the SweepBackend routes ---------------------------------------------------------------------

    def submit_sweep(self, spec: YoloSweepSpec, name: str | None, namespace: str | None) -> SweepRecord:
        """Record a sweep whose template passes the checks of a local ``POST /train`` (its paths stored absolute,
        each searched ``model`` too); its trials start from the scheduler's next tick. A name taken is a 409."""
        if spec.suspend:
            raise invalid([{"loc": ["body", "suspend"], "type": "not_supported", "msg": "a local sweep cannot be "
                            "resumed (there is no update): submit it when it should run, cancel it to stop it"}])
        if name is not None and len(name) > SWEEP_NAME_MAX:
            raise invalid([{"loc": ["body", "name"], "type": "too_long", "msg": f"a sweep's name has at most "
                            f"{SWEEP_NAME_MAX} characters (its trials are named <sweep>-<nnn>)"}])
        wire = self._confined(spec)
        sweep_id = str(uuid.uuid4())
        with self.lock:
            if not local_store.insert_sweep(self._conn, sweep_id, name or f"sweep-{sweep_id[:8]}", wire):
                raise ApiError(409, "invalid", {"errors": [{"loc": ["body", "name"], "type": "name_taken",
                                                            "msg": f"a sweep named {name} exists already"}]})
        self.step_sweep(sweep_id)
        found = self.get_sweep(sweep_id)
        assert found is not None
        return found

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """One sweep from SQLite."""
        with self.lock:
            row = local_store.read_sweep(self._conn, sweep_id)
        return None if row is None else _record(row)

    def list_sweeps(self, namespaces: Collection[str] | None = None) -> list[SweepRecord]:
        """Every sweep, newest first; local sweeps belong to no namespace, so a namespace filter matches none."""
        if namespaces is not None:
            return []
        with self.lock:
            rows = local_store.read_sweeps(self._conn)
        return [_record(row) for row in rows]

    def sweep_trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """Every trial of the sweep as a row (see :meth:`SweepBackend.sweep_trials`), best objective first."""
        record = self.get_sweep(sweep_id)
        if record is None:
            return []
        rows = [{"trial": t.number, "name": t.name, "task_id": t.task_id, "state": t.state, "objective": t.objective,
                 "epoch": t.epoch, "parameters": t.parameters, "reason": t.reason}
                for t in self._trials(sweep_id, YoloSweepSpec.model_validate(record.spec), record.status.wire())]
        return trial_rows(record, rows)

    def cancel_sweep(self, sweep_id: str) -> SweepRecord | None:
        """Cancel a sweep: its unfinished trials are cancelled now and no more start (the sweep then ends Failed
        with reason Cancelled). None when there is no such sweep."""
        with self.lock:
            if not local_store.cancel_sweep(self._conn, sweep_id):
                return None
        self.step_sweep(sweep_id)
        return self.get_sweep(sweep_id)

    # -- steps ---------------------------------------------------------------------------------------

    def step_sweeps(self) -> None:
        """One step of every unfinished sweep (the scheduler's tick); one sweep's error never stops the others."""
        with self.lock:
            rows = local_store.read_sweeps(self._conn, unfinished=True)
        for row in rows:
            try:
                self.step_sweep(row[0])
            except Exception:  # logged with its traceback; the next tick tries again
                log.exception("local sweep %s: step failed", row[1])

    def step_sweep(self, sweep_id: str) -> YoloSweepStatus | None:
        """One step of a sweep (see the module docstring); the status written, None when it is gone or over."""
        with self.sweep_lock:
            with self.lock:
                row = local_store.read_sweep(self._conn, sweep_id)
            if row is None or row[3].get("phase") in FINAL_PHASES:
                return None
            _, name, wire, old, cancelled, _, _ = row
            try:
                spec = YoloSweepSpec.model_validate(wire)
            except ValidationError as exc:
                return self._write(sweep_id, old, _failed(one_line(exc)))
            records = self._trials(sweep_id, spec, old)
            step = plan(spec, records, cancelled=cancelled)
            for trial in step.cancel:
                if trial.task_id:
                    self.cancel(trial.task_id)
            for trial, why in step.stop:  # the verdict first: the trainer's end that follows cannot change it
                stopped = self.conclude(trial.task_id or "", RunEnd(False, Reason.EARLY_STOPPED.value, why))
                if stopped is not None and stopped.phase == Phase.FAILED and trial.task_id:
                    self.trainers.terminate(trial.task_id)
            for number, parameters in step.create:
                if (refused := self._create(sweep_id, name, spec, number, parameters)) is not None:
                    return self._write(sweep_id, old, _failed(f"trial {trial_name(name, number)} was refused: "
                                                              f"{refused}"))
            changed = step.cancel or step.stop or step.create  # done now, locally: the status says so at once
            status = summary(spec, self._trials(sweep_id, spec, old), cancelled=cancelled) if changed else step.status
            return self._write(sweep_id, old, status)

    def _create(self, sweep_id: str, sweep: str, spec: YoloSweepSpec, number: int,
                parameters: dict[str, Any]) -> str | None:
        """Queue trial ``number`` as a local task, checked as ``POST /train`` checks one; a number that exists
        already is left as it is (the store refuses a second one). Returns why its training is refused, or None."""
        try:
            wire = self.prepare(trial_spec(spec.template, parameters))
        except ValidationError as exc:
            return one_line(exc)
        except ApiError as exc:
            return "; ".join(str(error.get("msg")) for error in exc.data.get("errors", [])) or str(exc)
        with self.lock:
            local_store.insert_trial(self._conn, sweep_id, number, str(uuid.uuid4()), trial_name(sweep, number),
                                     parameters, wire, QUEUED)
        self.trainers.wake()
        return None

    def _trials(self, sweep_id: str, spec: YoloSweepSpec, old: dict[str, Any]) -> list[TrialRecord]:
        """The sweep's trials as the planner sees them, from their tasks; a trial whose task retention deleted
        keeps what the sweep's table last said of it (or counts as failed)."""
        with self.lock:
            rows = local_store.read_trials(self._conn, sweep_id)
        seen = {row.get("trial"): row for row in old.get("trials") or []}
        records = []
        for number, task_id, name, parameters, status in rows:
            if status is not None:
                records.append(record_of(spec, number, name, parameters, TrainingStatus.model_validate(status),
                                         task_id=task_id))
                continue
            last = seen.get(number) or {}
            state = cast(TrialState, last["state"] if last.get("state") in _ENDED else "failed")
            records.append(TrialRecord(number, name, parameters, state, last.get("objective"), last.get("epoch"),
                                       task_id=task_id, reason=None if last else "Reaped"))
        return records

    def _write(self, sweep_id: str, old: dict[str, Any], status: YoloSweepStatus) -> YoloSweepStatus:
        """Store the sweep's status with its start time, and its completion time once it is over."""
        status = status.model_copy(update={
            "start_time": old.get("startTime") or utc_now(),
            "completion_time": (old.get("completionTime") or utc_now()) if status.phase in FINAL_PHASES else None})
        with self.lock:
            local_store.write_sweep_status(self._conn, sweep_id, status.wire())
        return status

    def _confined(self, spec: YoloSweepSpec) -> dict[str, Any]:
        """The sweep's spec to store: its template (and each searched ``model``) through :meth:`prepare`, so that
        a trial is refused at submit when its training would be (422 naming ``template.<field>``)."""
        errors: list[dict[str, Any]] = []
        wire = spec.wire()
        try:
            wire["template"] = self.prepare(spec.template)
        except ApiError as exc:
            raise invalid(_refusals(exc, ["template"])) from None
        models = spec.parameters.get("model")
        if models is not None and models.values is not None:
            confined = YoloTrainingSpec.model_validate(wire["template"])
            for index, value in enumerate(models.values):
                try:
                    wire["parameters"]["model"]["values"][index] = self.prepare(
                        trial_spec(confined, {"model": value}))["model"]
                except ApiError as exc:
                    errors += [{**error, "loc": ["body", "parameters", "model", "values", index]}
                               for error in exc.data.get("errors", [])]
        if errors:
            raise invalid(errors)
        return wire


def _failed(message: str) -> YoloSweepStatus:
    """A sweep that cannot go on: Failed with reason InvalidSpec (what the operator writes for the same)."""
    log.error("local sweep failed: %s", message)
    return YoloSweepStatus(phase="Failed", reason=Reason.INVALID_SPEC.value, message=message[:1000])


def _record(row: local_store.SweepRow) -> SweepRecord:
    """A sweep's row as the routes see it."""
    sweep_id, name, spec, status, cancelled, created_at, updated_at = row
    created = dt.datetime.fromtimestamp(created_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return SweepRecord(sweep_id=sweep_id, name=name, namespace=None, spec=spec,
                       status=YoloSweepStatus.model_validate(status), created_at=created, cancelled=cancelled,
                       version=round(updated_at * 1_000_000))
