"""The LIST+WATCH of YoloTrainings (or of YoloSweeps) that feeds an index of the API, and how it knows it is
still alive.

One thread lists the trainings (page by page, so 10,000 of them never sit in memory at once), then
watches from the list's resourceVersion with bookmarks. A broken connection resumes from the last seen
resourceVersion after a jittered backoff; 410 Gone (history compacted) relists. A watch can also die
silently (a proxy that keeps the connection open and sends nothing): every read has a timeout longer
than the API server's bookmark period, so a silent stream is dropped and re-opened, and the time of the
last word from the API server (a page, an event, a bookmark, a watch that ended normally) is kept, so
``/readyz`` can fail when the index has gone stale. The Kubernetes backend runs one such watch per resource.
"""

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from yolo_api.settings import ApiSettings
from yolo_crd.names import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)


class Fed(Protocol):
    """What a watch feeds: an index that takes a whole LIST, then one event at a time."""

    def replace_all(self, objects: Iterable[dict[str, Any]]) -> None:
        """Swap in the result of a LIST."""

    def apply(self, event_type: str, obj: dict[str, Any]) -> Any:
        """Apply one ADDED, MODIFIED or DELETED event."""


class TrainingWatch:
    """See the module docstring; ``plural``: the resource watched (``yolotrainings`` unless said)."""

    def __init__(self, api: Any, settings: ApiSettings, index: Fed, plural: str = PLURAL) -> None:
        self._api = api
        self._settings = settings
        self._index = index
        self.plural = plural
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{plural}-watch", daemon=True)
        self.reconnects = 0
        self.last_contact = 0.0  # time.monotonic() of the last word from the API server

    def start(self) -> None:
        """Start the LIST+WATCH thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (it is a daemon: a blocked read does not hold up shutdown)."""
        self._stopping.set()

    def fresh(self) -> bool:
        """The index has heard from the API server within ``watch_stale_seconds``."""
        return time.monotonic() - self.last_contact < self._settings.watch_stale_seconds

    def list_call(self) -> tuple[Any, tuple[Any, ...]]:
        """The list (and watch) call for the namespaces served, with its positional arguments."""
        if self._settings.namespace:
            return self._api.list_namespaced_custom_object, (GROUP, VERSION, self._settings.namespace, self.plural)
        return self._api.list_cluster_custom_object, (GROUP, VERSION, self.plural)

    def _pages(self, versions: list[str]) -> Iterator[dict[str, Any]]:
        """Every object, a page at a time; the list's resourceVersion goes into ``versions``."""
        call, args = self.list_call()
        token: str | None = None
        while True:
            page = call(*args, limit=self._settings.list_page_size, **({"_continue": token} if token else {}))
            self.last_contact = time.monotonic()
            versions[:] = [page["metadata"]["resourceVersion"]]
            yield from page.get("items") or []
            token = page["metadata"].get("continue")
            if not token:
                return

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        backoff = 0.5
        settings = self._settings
        while not self._stopping.is_set():
            call, args = self.list_call()
            try:
                if version is None:
                    versions: list[str] = []
                    self._index.replace_all(self._pages(versions))
                    version = versions[0]
                stream = watch.Watch().stream(call, *args, resource_version=version, allow_watch_bookmarks=True,
                                              timeout_seconds=settings.watch_timeout,
                                              _request_timeout=(10, settings.watch_read_timeout))
                for event in stream:  # an ERROR event (410 Gone...) is raised by the client as ApiException
                    self.last_contact = time.monotonic()
                    obj = event["raw_object"]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event["type"] != "BOOKMARK":
                        self._index.apply(event["type"], obj)
                    if self._stopping.is_set():
                        return
                self.last_contact = time.monotonic()  # the server ended the watch on time: it is there
                backoff = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch history of %s expired (410 Gone); relisting", self.plural)
                    version = None
                    continue
                log.warning("watch of %s failed (%s %s); retrying in %.1fs", self.plural, exc.status, exc.reason,
                            backoff)
                backoff = self._pause(backoff)
            except Exception as exc:  # refused, reset, or silent past the read timeout: resume where we were
                self.reconnects += 1
                log.warning("watch of %s broke (%s); reconnecting in %.1fs", self.plural, exc, backoff)
                backoff = self._pause(backoff)

    def _pause(self, backoff: float) -> float:
        """Sleep ``backoff`` seconds, jittered (replicas must not reconnect in step); return the next backoff."""
        self._stopping.wait(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto
        return min(backoff * 2, 30.0)
