"""Sends status patches off the training thread: coalesced, rate-limited, retried, flushed at the end.

Training calls :meth:`StatusReporter.update` and returns at once. A background thread merges everything
not yet delivered into one patch (the newest value of each field wins), sends at most one request per
``min_interval`` seconds, and backs off exponentially while the sink fails. A sink failure is logged and
retried, never raised into training. :meth:`close` delivers the final state with retries, bounded in time,
and says whether it arrived: a trainer must never claim a result its status does not show.

Every patch is made JSON-safe (non-finite numbers become null) and checked against the trainer's field
ownership before it is queued, so one diverging metric cannot make every later write invalid.
"""

import logging
import threading
import time
from typing import Any

from yolo_crd import ownership
from yolo_crd.wire import json_safe
from yolo_trainer.sinks import SinkError, StatusSink

log = logging.getLogger(__name__)

Patch = dict[str, Any]


def compose(first: Patch, second: Patch) -> Patch:
    """One merge patch equivalent to applying ``first`` then ``second`` (RFC 7396 composition)."""
    merged = dict(first)
    for key, value in second.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = compose(merged[key], value)
        else:
            merged[key] = value
    return merged


class StatusReporter:
    """Delivers the newest status to a sink in the background; see the module docstring."""

    def __init__(
        self,
        sink: StatusSink,
        *,
        min_interval: float = 1.0,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._sink = sink
        self._min_interval = min_interval
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._pending: Patch | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._last_send = float("-inf")
        self._backoff = 0.0
        self.sent = 0
        self.failures = 0
        self.dropped = 0
        self._last_dropped = False  # the latest delivery attempt ended in a non-retryable rejection
        self._thread = threading.Thread(target=self._run, name="status-reporter", daemon=True)
        self._thread.start()

    def update(self, patch: Patch) -> None:
        """Queue a patch; it is merged with anything not yet sent. Never blocks on the network."""
        try:
            ownership.check("trainer", patch)
        except ownership.OwnershipError as exc:  # a bug: report what we own, loudly, and keep training
            log.error("%s; those fields are not sent", exc)
            patch = {key: value for key, value in patch.items() if key in ownership.TRAINER_FIELDS}
        safe = json_safe(patch)
        with self._wake:
            self._pending = compose(self._pending or {}, safe)
            self._wake.notify()

    def _take(self) -> Patch | None:
        """Wait until a patch is due (rate limit and backoff respected) and take it; None when closing."""
        with self._wake:
            while not self._closing:
                due = self._last_send + max(self._min_interval, self._backoff)
                now = time.monotonic()
                if self._pending is not None and now >= due:
                    patch, self._pending = self._pending, None
                    return patch
                self._wake.wait(timeout=None if self._pending is None else due - now)
            return None  # close() flushes what is left, with its own deadline

    def _deliver(self, patch: Patch) -> bool:
        """Send once; on a retryable failure put the patch back under anything newer."""
        self._last_send = time.monotonic()
        try:
            self._sink.send(patch)
        except SinkError as exc:
            self.failures += 1
            if not exc.retryable:
                self.dropped += 1
                self._last_dropped = True
                log.error("status update dropped (retrying cannot help): %s", exc)
                return True
            self._backoff = min(self._max_backoff, max(self._initial_backoff, self._backoff * 2))
            log.warning("status update failed, retrying in %.1fs: %s", self._backoff, exc)
            with self._wake:
                self._pending = compose(patch, self._pending or {})
            return False
        except Exception:  # a sink bug must not kill training either
            self.failures += 1
            log.exception("status sink raised unexpectedly; the update is kept and retried")
            with self._wake:
                self._pending = compose(patch, self._pending or {})
            self._backoff = min(self._max_backoff, max(self._initial_backoff, self._backoff * 2))
            return False
        self.sent += 1
        self._last_dropped = False
        self._backoff = 0.0
        return True

    def _run(self) -> None:
        while True:
            patch = self._take()
            if patch is None:
                return
            self._deliver(patch)

    def close(self, timeout: float = 120.0) -> bool:
        """Stop the thread and deliver whatever is pending, retrying until ``timeout`` seconds pass.

        Returns True only when the latest state reached the sink: False when time ran out, and False when
        the sink refused it for good (a 422, a resource replaced by another of the same name).
        """
        deadline = time.monotonic() + timeout
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while True:
            with self._wake:
                patch, self._pending = self._pending, None
            if patch is None:
                if self._last_dropped:
                    log.error("final status was refused by the sink; it is not on the resource")
                return not self._last_dropped
            if self._deliver(patch):
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error("final status not delivered after %.0fs", timeout)
                return False
            time.sleep(min(self._backoff, remaining))
