"""The reporter: coalesces, retries with backoff, never raises into training, flushes the final state."""

import threading
from typing import Any

from yolo_trainer.reporter import StatusReporter, compose
from yolo_trainer.sinks import SinkError


class FlakySink:
    """Fails the first ``failures`` sends (retryably unless told otherwise), then records patches."""

    def __init__(self, failures: int = 0, *, retryable: bool = True, crash: bool = False) -> None:
        self.failures = failures
        self.retryable = retryable
        self.crash = crash
        self.calls = 0
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, patch: dict[str, Any]) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.failures:
                if self.crash:
                    raise RuntimeError("sink bug")
                raise SinkError("503 Service Unavailable", retryable=self.retryable)
            self.received.append(patch)


def state(received: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for patch in received:
        merged = compose(merged, patch)
    return merged


def test_compose_is_merge_patch_composition() -> None:
    assert compose({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": None, "e": 3}, "d": [1]}) == {
        "a": {"b": None, "c": 2, "e": 3}, "d": [1]}


def test_updates_are_coalesced_and_the_newest_value_wins() -> None:
    sink = FlakySink()
    reporter = StatusReporter(sink, min_interval=60.0)  # nothing but the first send before close
    for epoch in range(1, 51):
        reporter.update({"currentEpoch": epoch, "metrics": {"epoch": epoch}})
    reporter.update({"stage": "completed"})
    assert reporter.close(timeout=5)
    assert len(sink.received) <= 2
    assert state(sink.received) == {"currentEpoch": 50, "metrics": {"epoch": 50}, "stage": "completed"}


def test_failures_are_retried_and_the_final_state_arrives() -> None:
    sink = FlakySink(failures=5)
    reporter = StatusReporter(sink, min_interval=0.0, initial_backoff=0.01, max_backoff=0.05)
    reporter.update({"stage": "training", "currentEpoch": 1})
    reporter.update({"currentEpoch": 2})
    reporter.update({"stage": "completed", "finalMetrics": {"mAP50": 0.5}})
    assert reporter.close(timeout=10)
    assert sink.calls > 5
    assert state(sink.received) == {"stage": "completed", "currentEpoch": 2, "finalMetrics": {"mAP50": 0.5}}
    assert reporter.failures == 5


def test_a_crashing_sink_never_raises_into_training() -> None:
    sink = FlakySink(failures=3, crash=True)
    reporter = StatusReporter(sink, min_interval=0.0, initial_backoff=0.01, max_backoff=0.02)
    reporter.update({"stage": "training"})
    assert reporter.close(timeout=10)
    assert state(sink.received) == {"stage": "training"}


def test_non_retryable_failures_are_dropped_not_retried_forever() -> None:
    sink = FlakySink(failures=1, retryable=False)
    reporter = StatusReporter(sink, min_interval=0.0)
    reporter.update({"stage": "training"})
    assert reporter.close(timeout=5)
    assert sink.calls == 1 and sink.received == []


def test_close_gives_up_after_its_deadline() -> None:
    sink = FlakySink(failures=10**9)
    reporter = StatusReporter(sink, min_interval=0.0, initial_backoff=0.01, max_backoff=0.05)
    reporter.update({"stage": "completed"})
    assert reporter.close(timeout=0.3) is False
    assert sink.received == []
