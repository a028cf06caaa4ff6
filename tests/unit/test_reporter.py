"""The reporter: coalesces, retries with backoff, never raises into training, flushes the final state."""

import json
import math
import threading
from typing import Any

from waiting import eventually
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
    assert reporter.close(timeout=5) is False  # the state was refused: it is not on the resource
    assert sink.calls == 1 and sink.received == [] and reporter.dropped == 1


def test_a_refused_final_state_is_never_reported_as_delivered() -> None:
    """The bug: a 422 on the final patch dropped it, yet close() said True and the trainer exited 0."""
    sink = FlakySink(failures=2, retryable=False)
    reporter = StatusReporter(sink, min_interval=0.0)
    reporter.update({"stage": "training"})
    reporter.update({"stage": "completed", "finalMetrics": {"mAP50": 0.5}})
    assert reporter.close(timeout=5) is False
    earlier_refusal = FlakySink(failures=1, retryable=False)
    reporter = StatusReporter(earlier_refusal, min_interval=60.0)  # the first send goes out at once
    reporter.update({"currentEpoch": 1})
    eventually(lambda: earlier_refusal.calls >= 1)  # the background thread made its first (refused) send
    reporter.update({"stage": "completed", "currentEpoch": 2})
    assert reporter.close(timeout=5) is True  # the latest state arrived
    assert state(earlier_refusal.received) == {"stage": "completed", "currentEpoch": 2}


def test_non_finite_numbers_become_null_before_any_sink() -> None:
    """The bug: one NaN loss (a diverging run, large lr0) made every later patch invalid JSON."""
    sink = FlakySink()
    reporter = StatusReporter(sink, min_interval=0.0)
    reporter.update({"metrics": {"epoch": 3, "trainBoxLoss": math.nan, "mAP50": 0.1},
                     "history": [{"epoch": 3, "trainBoxLoss": math.inf, "mAP50": 0.1}],
                     "finalMetrics": {"mAP50": -math.inf, "recall": 0.5}})
    assert reporter.close(timeout=5)
    [sent] = sink.received
    json.dumps(sent, allow_nan=False)  # valid JSON, the API server and SQLite accept it
    assert sent["metrics"] == {"epoch": 3, "trainBoxLoss": None, "mAP50": 0.1}  # null removes the stale value
    assert sent["history"] == [{"epoch": 3, "mAP50": 0.1}]  # no merge inside lists: the key is left out
    assert sent["finalMetrics"] == {"mAP50": None, "recall": 0.5}


def test_a_field_the_trainer_does_not_own_is_never_sent() -> None:
    sink = FlakySink()
    reporter = StatusReporter(sink, min_interval=0.0)
    reporter.update({"stage": "training", "phase": "Running", "reason": "x"})
    assert reporter.close(timeout=5)
    assert sink.received == [{"stage": "training"}]


def test_close_gives_up_after_its_deadline() -> None:
    sink = FlakySink(failures=10**9)
    reporter = StatusReporter(sink, min_interval=0.0, initial_backoff=0.01, max_backoff=0.05)
    reporter.update({"stage": "completed"})
    assert reporter.close(timeout=0.3) is False
    assert sink.received == []
