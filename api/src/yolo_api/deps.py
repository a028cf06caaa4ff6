"""FastAPI dependencies, as ``Annotated`` aliases so that a route's signature reads as its contract."""

from typing import Annotated, cast

from fastapi import Depends, Request

from yolo_api.backends import TaskBackend
from yolo_api.errors import request_lang


def get_backend(request: Request) -> TaskBackend:
    """The backend created by :func:`yolo_api.app.create_app`."""
    return cast(TaskBackend, request.app.state.backend)


BackendDep = Annotated[TaskBackend, Depends(get_backend)]
LangDep = Annotated[str, Depends(request_lang)]
