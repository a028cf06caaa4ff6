"""FastAPI dependencies, as ``Annotated`` aliases so that a route's signature reads as its contract."""

from typing import Annotated, cast

from fastapi import Depends, Request

from yolo_api.backends import TaskBackend
from yolo_api.errors import request_lang


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, and a thread
# hop per poll cut /task_status throughput to a third.
async def get_backend(request: Request) -> TaskBackend:
    """The backend created by :func:`yolo_api.app.create_app`."""
    return cast(TaskBackend, request.app.state.backend)


async def get_lang(request: Request) -> str:
    """``en`` or ``zh`` from Accept-Language."""
    return request_lang(request)


BackendDep = Annotated[TaskBackend, Depends(get_backend)]
LangDep = Annotated[str, Depends(get_lang)]
