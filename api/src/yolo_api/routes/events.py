"""Server-Sent Events: one training's envelope (``/task_status/{id}/events``), and every training's row
(``/tasks/events``, one stream for a whole dashboard: browsers allow about six connections per host).

Every event carries JSON data and an ``id`` built from the task's version, which only grows (local: the commit
order of its row; Kubernetes: resourceVersion), so ids stay monotonic across reconnections and API restarts:
the list stream uses the version itself; the one-task stream uses twice the version for a status event and
twice plus one for its end, because a finished task can still be written after its end was sent (the
operator's verdict, the local backend's completion time) and only the id's parity then tells that the
client has the end. A client that reconnects with ``Last-Event-ID`` gets only what changed after it; a
finished task whose end it already has answers 204, which tells a standard ``EventSource`` to stop. The first event of
each connection sets ``retry:``. Backends that can say when a task changes (the Kubernetes index) wake the
one-task stream; otherwise the server re-reads every ``sse_poll_interval`` seconds (one cheap local read).
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from yolo_api.auth import DELETE, LIST
from yolo_api.backends import TaskBackend, TaskRecord
from yolo_api.deps import get_backend, get_caller, may
from yolo_api.errors import request_lang
from yolo_api.routes.tasks import TaskId, readable, visible_namespaces
from yolo_crd.envelope import TaskState, message

router = APIRouter()
TERMINAL = (TaskState.SUCCESS, TaskState.FAILURE)
RETRY_MS = 3000  # how long a disconnected EventSource waits before it reconnects
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
    204: {"description": "the task has ended and Last-Event-ID shows its end was delivered: stop reconnecting"},
}


def last_event_id(request: Request) -> int | None:
    """The ``Last-Event-ID`` a reconnecting client sends (None when absent or not one of our ids)."""
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if raw.isdigit() else None


@router.get("/tasks/events", summary="Live rows of every training (Server-Sent Events)",
            response_class=EventSourceResponse, responses=SSE_RESPONSES)
async def tasks_events(request: Request) -> EventSourceResponse:
    """``event: ready`` (the current version), then ``event: task`` with the ``GET /tasks`` row of each training
    that changes or appears, for the trainings the caller may list."""
    who = await get_caller(request)
    backend = await get_backend(request)
    namespaces = await visible_namespaces(request, backend)
    since = last_event_id(request)
    settings = request.app.state.settings

    async def visible(record: TaskRecord) -> bool:
        return namespaces is None or record.namespace in namespaces or await may(request, who, LIST, record.namespace)

    async def can_cancel(record: TaskRecord) -> bool:
        return record.state() not in TERMINAL and await may(request, who, DELETE, record.namespace)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        cursor = backend.latest_version() if since is None else since
        yield ServerSentEvent(json.dumps({"version": cursor}), event="ready", id=str(cursor), retry=RETRY_MS)
        while True:
            for record in backend.changed_since(cursor):
                cursor = max(cursor, record.version)
                if await visible(record):
                    row = {**record.summary(), "can_cancel": await can_cancel(record)}
                    yield ServerSentEvent(json.dumps(row, ensure_ascii=False), event="task", id=str(cursor))
            await asyncio.sleep(settings.sse_poll_interval)

    return EventSourceResponse(stream(), ping=settings.sse_ping_seconds, send_timeout=30)


@router.get("/task_status/{task_id}/events", summary="Live status of one training (Server-Sent Events)",
            response_class=EventSourceResponse, responses=SSE_RESPONSES)
async def task_events(task_id: TaskId, request: Request) -> Response:
    """``event: status`` with the envelope on every change; ``event: end`` (``{task_id, status}``) after a
    terminal state. 204 when ``Last-Event-ID`` shows the client already has the end."""
    record = await readable(request, task_id)  # 401/404 before the stream starts
    last_id = last_event_id(request)
    if last_id is not None and last_id % 2 == 1 and record.final():
        return Response(status_code=204)  # its id says the client has the end
    since = None if last_id is None else last_id // 2
    backend = await get_backend(request)
    settings = request.app.state.settings
    return EventSourceResponse(_stream(backend, task_id, request_lang(request), settings.sse_poll_interval, since),
                               ping=settings.sse_ping_seconds, send_timeout=30)


async def _stream(backend: TaskBackend, task_id: str, lang: str, poll: float, since: int | None
                  ) -> AsyncIterator[ServerSentEvent]:
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    subscribe: Callable[[str, Callable[[], None]], Callable[[], None]] | None = getattr(backend, "subscribe", None)

    def wake() -> None:
        loop.call_soon_threadsafe(changed.set)

    unsubscribe = subscribe(task_id, wake) if subscribe else None
    last: bytes | None = None
    seen = since  # the client has every state up to this version
    retry: int | None = RETRY_MS
    try:
        while True:
            changed.clear()
            record = backend.get(task_id)
            if record is None:  # deleted meanwhile
                yield ServerSentEvent(_not_found(task_id, lang), event="end", id=str(2 * (seen or 0) + 1),
                                      retry=retry)
                return
            _, body = record.rendered(lang)
            if (seen is None or record.version > seen) and body != last:
                last, seen = body, record.version if seen is None else max(seen, record.version)
                yield ServerSentEvent(body.decode(), event="status", id=str(2 * seen), retry=retry)
                retry = None
            if record.final():  # only a verdict no later event can change ends the stream
                end = {"task_id": task_id, "status": record.state().value}
                yield ServerSentEvent(json.dumps(end), event="end", id=str(2 * max(seen or 0, record.version) + 1),
                                      retry=retry)
                return
            with contextlib.suppress(TimeoutError):  # notified backends are re-read now and then all the same
                await asyncio.wait_for(changed.wait(), timeout=30.0 if unsubscribe else poll)
    finally:
        if unsubscribe is not None:
            unsubscribe()


def _not_found(task_id: str, lang: str) -> str:
    body: dict[str, Any] = {"code": 1, "message": message("not_found", lang), "data": {"task_id": task_id}}
    return json.dumps(body, ensure_ascii=False)
