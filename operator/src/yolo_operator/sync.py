"""Status writes of the operator: one at a time per training, conflict-checked, and retried until they land.

Job events, Pod events, the periodic resync and the kopf handlers all want to update one training's
status. Each write here runs under that training's lock, reads the training, computes the operator's
patch from what it read and sends it with the ``resourceVersion`` it read as a precondition, so nothing
computed from a stale object lands (a conflict re-reads and recomputes). Kopf never retries ``on.event``
handlers, so syncs requested from events are retried here, with jittered backoff, until they succeed or
the training is gone; requests that arrive while one is queued are coalesced into it.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any

from yolo_crd.outcome import finished
from yolo_crd.status import TrainingStatus
from yolo_operator import metrics
from yolo_operator.builders import child_name
from yolo_operator.coalesce import Coalescer, Key
from yolo_operator.gateway import KubeGateway
from yolo_operator.job_state import creation_may_fail, latest_refusal
from yolo_operator.translate import Observation, awaits_job, observe, observed, with_quality_gate

log = logging.getLogger(__name__)

Compute = Callable[[dict[str, Any], TrainingStatus], Observation]
_CONFLICT_ATTEMPTS = 8


class Conflicted(Exception):
    """Other writers kept changing the training between our read and our write."""


class Synchronizer:
    """See the module docstring."""

    def __init__(self, gateway: KubeGateway, *, initial_backoff: float = 0.5, max_backoff: float = 60.0) -> None:
        self.gateway = gateway
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()
        self._queue = Coalescer(self._sync_timed, "status sync", initial_backoff=initial_backoff,
                                max_backoff=max_backoff)
        self._told_no_events = False

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def write(self, namespace: str, name: str, compute: Compute) -> Observation | None:
        """Compute a patch from the current training and write it, under the training's lock.

        Returns what was written (None when the training is gone). Raises on API errors: kopf handlers
        let kopf retry; :meth:`request` retries by itself.
        """
        async with self._lock((namespace, name)):
            return await asyncio.to_thread(self._write, namespace, name, compute)

    def _write(self, namespace: str, name: str, compute: Compute) -> Observation | None:
        from kubernetes.client.exceptions import ApiException

        for _ in range(_CONFLICT_ATTEMPTS):
            training = self.gateway.get_training(namespace, name)
            if training is None:
                return None
            status = TrainingStatus.model_validate(training.get("status") or {})
            observation = with_quality_gate(compute(training, status), status, training.get("spec") or {})
            if observation.patch:
                try:
                    self.gateway.patch_status(namespace, name, observation.patch,
                                              training["metadata"]["resourceVersion"])
                except ApiException as exc:
                    if exc.status == 409:
                        continue  # another writer was first: read again and recompute
                    raise
            for kind, reason, text in observation.events:
                self.gateway.post_event(training, kind, reason, text)
            return observation
        raise Conflicted(f"{namespace}/{name} changed under every one of {_CONFLICT_ATTEMPTS} attempts")

    async def sync(self, namespace: str, name: str, *, generation: int | None = None) -> Observation | None:
        """Mirror the Job and its Pods into status now; ``generation`` (from a reconcile) is recorded as observed."""
        return await self.write(namespace, name, lambda training, status: self.observe(training, status, generation))

    def observe(self, training: dict[str, Any], status: TrainingStatus, generation: int | None) -> Observation:
        """Read the training's Job and Pods and translate them (runs in a worker thread)."""
        meta = training["metadata"]
        if meta.get("deletionTimestamp"):  # being deleted (foreground: its Job goes first): nothing to tell
            return Observation({})
        job_name = child_name(meta)
        wanted = not finished(status) or awaits_job(status)  # a finished training's Job is read only to record its end
        job = self.gateway.get_job(meta["namespace"], job_name) if wanted else None
        pods = self.gateway.list_pods(meta["namespace"], meta["uid"]) if job else []
        refused = None
        if job is not None and creation_may_fail(job, pods):
            refused = latest_refusal(self._refusals(meta["namespace"], job["metadata"]["uid"]), pods)
        found = observe(job, pods, status, refused)
        if job is not None and status.job_name != job_name:
            found.patch["jobName"] = job_name
        return observed(found, status, generation)

    def _refusals(self, namespace: str, job_uid: str) -> list[tuple[str, str]]:
        """The Job's FailedCreate Events; none when this operator may not read Events (a chart older than the
        operator: said once in the log), so the rest of the status is still told."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.gateway.failed_creations(namespace, job_uid)
        except ApiException as exc:
            if exc.status != 403:
                raise
            if not self._told_no_events:
                self._told_no_events = True
                log.warning("cannot list Events in %s (403): a trainer pod the API server refuses shows as waiting; "
                            "give the operator list and watch on events (the chart does)", namespace)
            return []

    def request(self, namespace: str, name: str) -> None:
        """Sync soon, in the background, retried until it succeeds; coalesced with a sync already queued."""
        self._queue.request(namespace, name)

    async def _sync_timed(self, key: Key) -> None:
        with metrics.timed("sync"):
            await self.sync(*key)

    async def close(self) -> None:
        """Cancel the syncs still queued (at operator shutdown)."""
        await self._queue.close()
