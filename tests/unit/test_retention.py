"""Retention: when a finished training is due for deletion, and the operator's reaper that deletes it."""

import asyncio
import datetime as dt
from typing import Any

import pytest

from yolo_crd.retention import due, reap_at, tombstone
from yolo_crd.status import TrainingStatus
from yolo_operator.retention import Reaper, ttl_of

DONE = {"phase": "Succeeded", "completionTime": "2026-01-01T00:00:00Z"}


def status(**wire: Any) -> TrainingStatus:
    return TrainingStatus.model_validate(wire)


def test_due_only_after_a_finished_trainings_ttl() -> None:
    finished_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert reap_at(60, status(**DONE)) == finished_at + dt.timedelta(seconds=60)
    assert not due(60, status(**DONE), finished_at + dt.timedelta(seconds=59))
    assert due(60, status(**DONE), finished_at + dt.timedelta(seconds=60))
    assert reap_at(None, status(**DONE)) is None  # no TTL: kept
    assert reap_at(0, status(phase="Running", completionTime="2026-01-01T00:00:00Z")) is None
    assert reap_at(0, status(phase="Failed")) is None  # no completion time: never deleted by guess
    assert ttl_of({"ttlSecondsAfterFinished": 5}, 100) == 5 and ttl_of({}, 100) == 100 and ttl_of({}, None) is None


def test_only_a_finished_training_leaves_a_tombstone() -> None:
    gone = tombstone("uid", "shapes", "team-a", {"ttlSecondsAfterFinished": 30}, status(**DONE), "2026-01-02T00:00:00Z")
    assert gone is not None and "team-a/shapes finished at 2026-01-01T00:00:00Z" in gone.explain()
    assert "30s" in gone.explain() and "artifacts" in gone.explain()
    assert tombstone("uid", "shapes", "team-a", {}, status(phase="Running"), "now") is None


class Gateway:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str, str]] = []

    def delete_training(self, namespace: str, name: str, uid: str) -> bool:
        self.deleted.append((namespace, name, uid))
        return True


def training(uid: str, ttl: int | None, **wire: Any) -> dict[str, Any]:
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return {"metadata": {"namespace": "team-a", "name": f"t-{uid}", "uid": uid}, "spec": spec, "status": wire}


def test_the_reaper_deletes_what_is_due_and_nothing_else() -> None:
    async def scenario() -> tuple[list[tuple[str, str, str]], int]:
        gateway = Gateway()
        reaper = Reaper(gateway, default_ttl=None)  # type: ignore[arg-type]
        reaper.observe("ADDED", training("due", 0, **DONE))
        reaper.observe("ADDED", training("running", 0, phase="Running"))
        reaper.observe("ADDED", training("kept", None, **DONE))
        far = {**DONE, "completionTime": "2999-01-01T00:00:00Z"}
        reaper.observe("ADDED", training("later", 0, **far))
        reaper.observe("ADDED", training("gone", 0, **far))
        reaper.observe("DELETED", training("gone", 0, **far))
        for _ in range(20):
            await asyncio.sleep(0.01)
        waiting = reaper.scheduled()
        await reaper.close()
        return gateway.deleted, waiting

    deleted, waiting = asyncio.run(scenario())
    assert deleted == [("team-a", "t-due", "due")]
    assert waiting == 1  # "later" sleeps until its time; "gone" was dropped when it was deleted


class Refusing(Gateway):
    def __init__(self, status: int, failures: int) -> None:
        super().__init__()
        self.status, self.failures, self.calls = status, failures, 0

    def delete_training(self, namespace: str, name: str, uid: str) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise type("ApiException", (Exception,), {"status": self.status})()
        return super().delete_training(namespace, name, uid)


@pytest.mark.parametrize(("status", "calls", "deleted"), [(503, 3, 1), (429, 3, 1), (403, 1, 0), (422, 1, 0)])
def test_the_reaper_retries_only_what_can_succeed(status: int, calls: int, deleted: int) -> None:
    async def scenario() -> Refusing:
        gateway = Refusing(status, failures=2)
        reaper = Reaper(gateway, default_ttl=0, retry_seconds=0.001)  # type: ignore[arg-type]
        reaper.observe("ADDED", training("due", None, **DONE))
        for _ in range(50):
            await asyncio.sleep(0.005)
        await reaper.close()
        return gateway

    gateway = asyncio.run(scenario())
    assert (gateway.calls, len(gateway.deleted)) == (calls, deleted)


def test_the_index_remembers_a_finished_training_deleted_while_its_watch_was_away() -> None:
    """A relist (410 Gone, a reconnect) finds a finished training gone: it was reaped, and says so."""
    from yolo_api.backends.index import TrainingIndex

    index = TrainingIndex(reaped_retention=3600)
    done = {**training("done", 60, **DONE), "apiVersion": "yolo-operator.io/v1alpha1"}
    running = training("running", None, phase="Running")
    index.replace_all([done, running])
    index.replace_all([])
    gone = index.reaped("done")
    assert gone is not None and gone.ttl_seconds == 60 and gone.namespace == "team-a"
    assert index.reaped("running") is None and index.get("done") is None
