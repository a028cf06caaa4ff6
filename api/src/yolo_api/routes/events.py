"""``GET /task_status/{task_id}/events``: the same envelope as ``/task_status``, pushed as Server-Sent Events.

One event whenever the envelope changes, the first at once, and the stream ends after a terminal state
(success or failure), so a client never polls. Backends that can say when a task changes (the Kubernetes
index) wake the stream; others (SQLite, written by trainer processes) are re-read every
``sse_poll_interval`` seconds on the server, which is still one cheap local read per stream.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from yolo_api.backends import TaskBackend
from yolo_api.deps import get_backend
from yolo_api.errors import request_lang
from yolo_api.routes.tasks import TaskId, readable
from yolo_crd.envelope import TaskState, message

router = APIRouter()
TERMINAL = (TaskState.SUCCESS, TaskState.FAILURE)


@router.get("/task_status/{task_id}/events", summary="Live status of one training (Server-Sent Events)",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`status` events carrying the /task_status envelope"}})
async def task_events(task_id: TaskId, request: Request) -> EventSourceResponse:
    """``event: status`` with the envelope as data on every change; ``event: end`` after a terminal state."""
    await readable(request, task_id)  # 401/404 before the stream starts
    backend = await get_backend(request)
    settings = request.app.state.settings
    return EventSourceResponse(_stream(backend, task_id, request_lang(request), settings.sse_poll_interval),
                               ping=settings.sse_ping_seconds, send_timeout=30)


async def _stream(backend: TaskBackend, task_id: str, lang: str, poll: float) -> AsyncIterator[ServerSentEvent]:
    changed = asyncio.Event()
    loop = asyncio.get_running_loop()
    subscribe: Callable[[str, Callable[[], None]], Callable[[], None]] | None = getattr(backend, "subscribe", None)

    def wake() -> None:
        loop.call_soon_threadsafe(changed.set)

    unsubscribe = subscribe(task_id, wake) if subscribe else None
    last: bytes | None = None
    sequence = 0
    try:
        while True:
            changed.clear()
            record = backend.get(task_id)
            if record is None:  # deleted meanwhile
                yield ServerSentEvent(_not_found(task_id, lang), event="end")
                return
            _, body = record.rendered(lang)
            if body != last:
                sequence += 1
                last = body
                yield ServerSentEvent(body.decode(), event="status", id=str(sequence))
            if record.state() in TERMINAL:
                yield ServerSentEvent(record.state().value, event="end")
                return
            with contextlib.suppress(TimeoutError):  # notified backends are re-read now and then all the same
                await asyncio.wait_for(changed.wait(), timeout=30.0 if unsubscribe else poll)
    finally:
        if unsubscribe is not None:
            unsubscribe()


def _not_found(task_id: str, lang: str) -> str:
    body: dict[str, Any] = {"code": 1, "message": message("not_found", lang), "data": {"task_id": task_id}}
    return json.dumps(body, ensure_ascii=False)
