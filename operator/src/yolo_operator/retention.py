"""The operator's reaper: a finished training is deleted ``ttlSecondsAfterFinished`` after it finished.

Fed by the trainings' watch (``on.event``, which also replays every training when the operator starts),
it keeps one sleeping task per training that is due some day, so a restarted operator reaps on time what
it had scheduled before. The deletion is preconditioned on the training's uid (a new training of the same
name is never touched); its Job and pods follow through their owner references; artifacts in object
storage or on volumes stay. No finalizer is involved: deleting a training by hand never waits for us.
"""

import asyncio
import datetime as dt
import logging
from typing import Any

from pydantic import ValidationError

from yolo_crd.retention import reap_at
from yolo_crd.status import TrainingStatus
from yolo_operator.gateway import KubeGateway

log = logging.getLogger(__name__)


def ttl_of(spec: dict[str, Any], default: int | None) -> int | None:
    """The training's own ``ttlSecondsAfterFinished``, else the operator's default (None: kept for ever)."""
    own = spec.get("ttlSecondsAfterFinished")
    return own if isinstance(own, int) else default


def transient(exc: Exception) -> bool:
    """An API error worth retrying: the server busy or failing (429, 5xx), or no answer at all."""
    status = getattr(exc, "status", None)
    return not isinstance(status, int) or status == 429 or status >= 500


class Reaper:
    """See the module docstring."""

    def __init__(self, gateway: KubeGateway, default_ttl: int | None, *, retry_seconds: float = 30.0) -> None:
        self.gateway = gateway
        self.default_ttl = default_ttl
        self.retry_seconds = retry_seconds
        self._due: dict[str, tuple[dt.datetime, asyncio.Task[None]]] = {}

    def observe(self, event_type: str, obj: dict[str, Any]) -> None:
        """Schedule, move or drop the deletion of the training in a watch event."""
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        at = None
        if event_type != "DELETED" and not meta.get("deletionTimestamp"):
            try:
                status = TrainingStatus.model_validate(obj.get("status") or {})
            except ValidationError:
                status = None
            at = reap_at(ttl_of(obj.get("spec") or {}, self.default_ttl), status)
        held = self._due.get(uid)
        if held is not None and held[0] == at:
            return
        if held is not None:
            held[1].cancel()
            del self._due[uid]
        if at is not None:
            task = asyncio.create_task(self._reap(meta["namespace"], meta["name"], uid, at), name=f"reap {uid}")
            self._due[uid] = (at, task)

    async def _reap(self, namespace: str, name: str, uid: str, at: dt.datetime) -> None:
        try:
            await asyncio.sleep(max(0.0, (at - dt.datetime.now(dt.UTC)).total_seconds()))
            backoff = self.retry_seconds
            while True:
                try:
                    deleted = await asyncio.to_thread(self.gateway.delete_training, namespace, name, uid)
                except Exception as exc:
                    if not transient(exc):  # 403 (RBAC without delete), 422: retrying cannot help
                        log.error("cannot delete %s/%s after its ttlSecondsAfterFinished (%s: %s); it is kept. Give "
                                  "the operator delete on yolotrainings (the chart does)", namespace, name,
                                  type(exc).__name__, exc)
                        return
                    log.warning("deleting %s/%s (ttlSecondsAfterFinished) failed (%s: %s); retrying in %.0fs",
                                namespace, name, type(exc).__name__, exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 600.0)
                    continue
                if deleted:
                    log.info("deleted %s/%s (task %s): its ttlSecondsAfterFinished passed at %s", namespace, name, uid,
                             at.isoformat())
                return
        finally:
            held = self._due.get(uid)
            if held is not None and held[1] is asyncio.current_task():
                del self._due[uid]

    def scheduled(self) -> int:
        """How many trainings wait for their deletion."""
        return len(self._due)

    async def close(self) -> None:
        """Stop every pending deletion (at operator shutdown; the next operator reschedules them)."""
        tasks = [task for _, task in self._due.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._due.clear()
