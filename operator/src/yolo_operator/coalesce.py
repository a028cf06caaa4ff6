"""Background work per object: requested any number of times, run one at a time, retried until it succeeds.

Kopf never retries ``on.event`` handlers, and a burst of watch events about one object should cost one piece of
work, not one each. A :class:`Coalescer` runs ``work(key)`` in a task per key: a request that arrives while
the work runs makes it run once more afterwards (coalesced), and a failure is retried with jittered,
growing backoff until the work succeeds (the work decides when there is nothing left to do).
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


@dataclass
class _Request:
    task: "asyncio.Task[None] | None" = None
    again: bool = True


class Coalescer:
    """See the module docstring; ``what`` names the work in log messages ("status sync", "sweep")."""

    def __init__(self, work: Callable[[Key], Awaitable[Any]], what: str, *, initial_backoff: float = 0.5,
                 max_backoff: float = 60.0) -> None:
        self._work = work
        self._what = what
        self._requests: dict[Key, _Request] = {}
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff

    def request(self, namespace: str, name: str) -> None:
        """Run the work for (namespace, name) soon, in the background; coalesced with a run already queued."""
        key = (namespace, name)
        request = self._requests.get(key)
        if request is None:
            request = self._requests[key] = _Request()
            request.task = asyncio.create_task(self._serve(key, request), name=f"{self._what} {namespace}/{name}")
        request.again = True

    async def _serve(self, key: Key, request: _Request) -> None:
        backoff = self._initial_backoff
        try:
            while request.again:
                request.again = False
                try:
                    await self._work(key)
                    backoff = self._initial_backoff
                except Exception as exc:
                    request.again = True
                    log.warning("%s of %s/%s failed (%s: %s); retrying in %.1fs", self._what, *key,
                                type(exc).__name__, exc, backoff)
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
                    backoff = min(self._max_backoff, backoff * 2)
        finally:
            del self._requests[key]

    async def close(self) -> None:
        """Cancel the work still queued (at operator shutdown)."""
        tasks = [request.task for request in self._requests.values() if request.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
