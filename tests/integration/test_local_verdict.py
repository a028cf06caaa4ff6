"""The local backend's verdict races: a cancel and a trainer's end arrive together, many times over.

Whichever the backend's lock lets in first decides (:func:`yolo_crd.outcome.verdict`); the other finds the
task final and writes nothing, and the store itself refuses to move a finished phase (as the CRD's CEL
rule does on a cluster). The bug: ``_reap`` read ``cancelled`` outside the lock and the finish never
checked whether the task had already ended, so a Cancelled task became TrainerExited or Succeeded.
"""

import random
import sqlite3
import threading
from pathlib import Path

import pytest

from yolo_api.backends.local import LocalBackend
from yolo_api.settings import ApiSettings
from yolo_io import local_store

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
REPORT = {"stage": "completed", "finalMetrics": FINAL, "weightsPath": "/runs/t/weights/best.pt"}


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(ApiSettings(backend="local", state_dir=tmp_path / "state", local_gpus=0))


def race(backend: LocalBackend, task_id: str, code: int, reported: bool, trainer_report_races: bool,
         rng: random.Random) -> None:
    """Run a cancel, the trainer's exit (and maybe its final report) at once; return what each saw of the phase."""
    errors: list[BaseException] = []
    start = threading.Barrier(3 if trainer_report_races else 2)

    def run(step: object) -> None:
        start.wait()
        try:
            step()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    steps = [lambda: backend.cancel(task_id), lambda: backend.trainers._finish(task_id, code)]
    if trainer_report_races:
        trainer = local_store.connect(backend.state_dir / "state.db")  # a trainer is another process: its own connection
        steps.append(lambda: local_store.patch_status(trainer, task_id, REPORT))
    elif reported:
        local_store.patch_status(backend._conn, task_id, REPORT)
    rng.shuffle(steps)  # the thread released last by the barrier tends to run first
    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("trainer_report_races", [False, True])
def test_a_cancel_racing_a_finish_gives_one_verdict(backend: LocalBackend, trainer_report_races: bool) -> None:
    rng = random.Random(7)
    outcomes: set[tuple[str, str | None]] = set()
    for attempt in range(150):
        task_id = f"task-{attempt}"
        local_store.insert_task(backend._conn, task_id, "race", {"epochs": 1})
        local_store.patch_status(backend._conn, task_id, {"phase": "Pending", "stage": "training"})
        reported = rng.random() < 0.5
        code = rng.choice([0, 1, -9])
        race(backend, task_id, code, reported, trainer_report_races, rng)
        record = backend.get(task_id)
        assert record is not None and record.status is not None
        status = record.status
        outcomes.add((status.phase.value if status.phase else "", status.reason))
        assert status.phase is not None and status.phase.value in ("Succeeded", "Failed"), status
        if reported and not trainer_report_races:  # the success was accepted first: nothing turns it over
            assert (status.phase.value, status.reason) == ("Succeeded", None)
        if status.phase.value == "Succeeded":
            assert status.final_metrics is not None
        # the verdict is final: a late finish or cancel changes nothing
        before = backend.get(task_id)
        backend.trainers._finish(task_id, 1)
        backend.cancel(task_id)
        after = backend.get(task_id)
        assert before is not None and after is not None and after.status == before.status
        envelope = after.envelope()[1]["data"]["status"]
        assert envelope == ("success" if status.phase.value == "Succeeded" else "failure")
    assert ("Failed", "Cancelled") in outcomes


def test_the_store_refuses_to_move_a_finished_phase(backend: LocalBackend) -> None:
    local_store.insert_task(backend._conn, "done", "done", {})
    local_store.patch_status(backend._conn, "done", {"phase": "Failed", "reason": "Cancelled"})
    with pytest.raises(local_store.FinalPhaseError, match="cannot change phase"):
        local_store.patch_status(backend._conn, "done", {"phase": "Succeeded"})
    assert local_store.patch_status(backend._conn, "done", {"stage": "completed"})
    assert local_store.read_status(backend._conn, "done")["phase"] == "Failed"


def test_a_success_landing_between_a_cancels_read_and_write_stands(backend: LocalBackend,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer is another process and writes its final report without the backend's lock: when it lands
    after the cancel read the task but before it wrote, the store refuses Failed and the cancel decides again."""
    import yolo_api.backends.local as local

    local_store.insert_task(backend._conn, "late", "late", {"epochs": 1})
    local_store.patch_status(backend._conn, "late", {"phase": "Running", "stage": "training"})
    decide = local.verdict
    seen: list[str] = []

    def report_then_decide(status: object, end: object) -> object:
        if not seen:  # the trainer's final report commits right after the cancel's read
            local_store.patch_status(sqlite3.connect(backend.state_dir / "state.db", isolation_level=None),
                                     "late", REPORT)
            seen.append(backend.get("late").state().value)  # type: ignore[union-attr]
        return decide(status, end)  # type: ignore[arg-type]

    monkeypatch.setattr(local, "verdict", report_then_decide)
    backend.cancel("late")
    record = backend.get("late")
    assert seen == ["success"]  # what a poller was answered in between...
    assert record is not None and record.status is not None and record.status.phase is not None
    assert (record.status.phase.value, record.envelope()[1]["data"]["status"]) == ("Succeeded", "success")  # ...stands
