"""The list and watch half of the emulated API server (``tests/emulator.py``): paginated lists, watches
that resume from a resourceVersion, answer 410 once it is compacted, send bookmarks when asked, and can be
slowed (``watch_delay``) or silenced without closing (``frozen``), as a lagging or stuck one would be.

A mixin of :class:`emulator.ApiEmulator`, whose attributes it uses (events, compaction marks, pages).
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import json
import uuid
from typing import Any

import aiohttp.web
from kmock._internal import rendering

from emulator_rules import StatusError, check_field_labels, fields_match, resource_key, selector_matches


class WatchStreams:
    """``_list``, ``_watch`` and the event log they read; see the module docstring."""

    def compact(self) -> None:
        """Forget all watch history, so that resuming any watch answers 410 Gone."""
        for key, events in self._events.items():
            self._compacted[key] = self._rv
            events.clear()

    def drop_watches(self) -> None:
        """End every open watch stream (as an API server restart does)."""
        for task in list(self._watches):
            task.cancel()

    def _list(self, request: rendering.Request) -> dict[str, Any]:
        kind = self._infos[resource_key(request.resource)][0]  # type: ignore[arg-type]
        self.listed.append((request.resource.plural or "", dict(request.params)))  # type: ignore[union-attr]
        token = request.params.get("continue")
        if token:
            if token not in self._pages:
                raise StatusError(410, "Expired", "the provided continue parameter is too old")
            items, version = self._pages.pop(token), token.split(".")[0]
        else:
            items, version = [copy.deepcopy(o) for o in self._matching(request)], str(self._rv)
        meta: dict[str, Any] = {"resourceVersion": version}
        limit = int(request.params.get("limit") or 0)
        if limit and len(items) > limit:
            items, rest = items[:limit], items[limit:]
            meta["continue"] = f"{version}.{uuid.uuid4().hex}"
            meta["remainingItemCount"] = len(rest)
            self._pages[meta["continue"]] = rest
            while len(self._pages) > 64:
                self._pages.pop(next(iter(self._pages)))
        return {"apiVersion": "v1", "kind": f"{kind}List", "metadata": meta, "items": items}

    async def _watch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        assert request.resource is not None and request._raw_request is not None
        rkey = resource_key(request.resource)
        check_field_labels(request.resource.plural or "", request.params.get("fieldSelector", ""))
        if self.closing:
            return aiohttp.web.json_response({"kind": "Status", "code": 503, "status": "Failure"}, status=503)
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        self.watched.append((request.resource.plural or "", dict(request.params)))
        since = int(request.params.get("resourceVersion") or 0)
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        bookmarks = request.params.get("allowWatchBookmarks") == "true"
        kind, _, _ = self._infos[rkey]
        api_version = f"{request.resource.group}/{request.resource.version}".lstrip("/")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        labels, fields = request.params.get("labelSelector", ""), request.params.get("fieldSelector", "")
        plural = request.resource.plural or ""

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return ((request.namespace is None or meta.get("namespace") == request.namespace)
                    and selector_matches(meta.get("labels") or {}, labels) and fields_match(obj, fields, plural))

        async def send(kind: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        if since and since < self._compacted.get(rkey, 0):
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                    "message": f"too old resource version: {since} ({self._compacted[rkey]})"}
            await send("ERROR", gone)
            return response
        if not since:
            for obj in self._matching(request):
                await send("ADDED", copy.deepcopy(obj))
            since = self._rv
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            while loop.time() < deadline:
                if self.frozen:  # the connection stays open and silent, as a stuck proxy would keep it
                    await asyncio.sleep(0.05)
                    continue
                tick = self._current_tick()  # taken before the scan: a later event sets it, none is missed
                seen = self._rv  # every event up to here is in the deque now: after the scan, all are sent
                ripe = loop.time() - self.watch_delay
                held = None  # the first event still held back by watch_delay: nothing after it is sent yet
                events = self._events.get(rkey, [])
                for rv, event_type, obj, at in events[bisect.bisect_right(events, since, key=lambda e: e[0]):]:
                    if at > ripe:
                        held = at
                        break
                    since = rv
                    if wanted(obj):
                        await send(event_type, obj)
                if bookmarks and held is None and loop.time() >= next_bookmark:
                    since = max(since, seen)
                    await send("BOOKMARK", {"kind": kind, "apiVersion": api_version,
                                            "metadata": {"resourceVersion": str(since)}})
                    next_bookmark = loop.time() + self.bookmark_interval
                wake = min(deadline, next_bookmark) if bookmarks else deadline
                if held is not None:
                    wake = min(wake, held + self.watch_delay)
                try:
                    await asyncio.wait_for(tick.wait(), timeout=max(0.0, wake - loop.time()))
                except TimeoutError:
                    if loop.time() >= deadline:
                        break
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        return response

    def _current_tick(self) -> asyncio.Event:
        if self._tick is None:
            self._tick = asyncio.Event()
        return self._tick

    async def _record(self, rkey: str, kind: str, obj: dict[str, Any]) -> None:
        events = self._events.setdefault(rkey, [])
        events.append((self._rv, kind, copy.deepcopy(obj), asyncio.get_running_loop().time()))
        if len(events) > self.event_limit:  # compact the older half at once (a list: watches bisect it by rv)
            dropped = len(events) - self.event_limit // 2
            self._compacted[rkey] = events[dropped - 1][0]
            del events[:dropped]
        tick, self._tick = self._current_tick(), asyncio.Event()
        tick.set()
