"""Where the trainer's status patches go: the resource's status subresource, or SQLite on one machine.

A sink sends one JSON merge patch and raises :class:`SinkError` when it cannot; the error says whether
sending the same state again later may succeed. Retrying, coalescing and backoff live in the reporter.
"""

from typing import Any, Protocol


class SinkError(Exception):
    """A patch was not delivered. ``retryable`` is False when trying again cannot help (e.g. 404)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class StatusSink(Protocol):
    """Delivers a status merge patch for one training."""

    def send(self, patch: dict[str, Any]) -> None:
        """Apply ``patch`` (RFC 7396 merge patch of the status) or raise :class:`SinkError`."""


class LogSink:
    """Writes each patch to the log: for a trainer run with no backend to report to."""

    def __init__(self) -> None:
        import logging

        self._log = logging.getLogger("yolo_trainer.status")

    def send(self, patch: dict[str, Any]) -> None:
        """Log the patch as one JSON line."""
        import json

        self._log.info("status %s", json.dumps(patch, sort_keys=True))
