"""The operator's kopf indexes and the resync they feed: which trainings are unfinished (kopf drops a training
from the index once its filter stops matching), which training a Job belongs to, and no handler that would put
a finalizer on a training (timers, daemons): deleting a training never waits for the operator."""

import asyncio
from typing import Any

import kopf

from yolo_operator import handlers


class Requests:
    """A syncer that records what it is asked, and says when it has been asked ``wanted`` times."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.wanted = 0
        self.enough = asyncio.Event()

    def request(self, namespace: str, name: str) -> None:
        self.seen.append((namespace, name))
        if len(self.seen) >= self.wanted:
            self.enough.set()

    async def until(self, count: int) -> None:
        self.wanted, self.enough = count, asyncio.Event()
        if len(self.seen) < count:
            await asyncio.wait_for(self.enough.wait(), timeout=10)


def test_only_unfinished_trainings_are_indexed() -> None:
    assert handlers._unfinished(status={})
    assert handlers._unfinished(status={"phase": "Running"})
    assert not handlers._unfinished(status={"phase": "Succeeded"})
    assert not handlers._unfinished(status={"phase": "Failed", "reason": "Cancelled"})
    assert handlers._unfinished(status=kopf.Status({"phase": 5}))  # unreadable: the resync looks at it
    assert handlers.unfinished_trainings(namespace="team-a", name="shapes") == {("team-a", "shapes"): True}


def test_a_job_is_indexed_by_namespace_and_name_to_its_training() -> None:
    labels: Any = {"yolo-operator.io/training": "shapes"}
    assert handlers.training_of_job(namespace="team-a", name="shapes-1a2b", labels=labels) == {
        ("team-a", "shapes-1a2b"): "shapes"}
    assert handlers.training_of_job(namespace="team-a", name="other", labels={}) is None


async def test_the_resync_requests_every_unfinished_training_spread_over_the_interval() -> None:
    unfinished: dict[tuple[str, str], Any] = {("a", "one"): True, ("b", "two"): True}
    syncer = Requests()
    task = asyncio.create_task(handlers.resync_forever(syncer, unfinished, 0.2))  # type: ignore[arg-type]
    try:
        await syncer.until(4)
        unfinished.pop(("a", "one"))  # finished: kopf took it out of the index
        await syncer.until(len(syncer.seen) + 3)
    finally:
        task.cancel()
    assert set(syncer.seen[:2]) == {("a", "one"), ("b", "two")}
    assert syncer.seen[-2:] == [("b", "two"), ("b", "two")]


def test_no_handler_puts_a_finalizer_on_trainings() -> None:
    registry = kopf.get_default_registry()
    assert list(registry._spawning.get_all_handlers()) == []  # timers and daemons would
    assert {handler.id for handler in registry._indexing.get_all_handlers()} >= {"unfinished_trainings",
                                                                                 "training_of_job"}
