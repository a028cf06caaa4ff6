"""FastAPI dependencies, as ``Annotated`` aliases so that a route's signature reads as its contract."""

from typing import Annotated, cast

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from yolo_api.auth import TRAININGS, Authenticator, Principal, bearer_token, forbidden, unauthenticated
from yolo_api.backends import TaskBackend
from yolo_api.backends.sweeps import SweepBackend
from yolo_api.errors import ApiError, request_lang


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, and a thread
# hop per poll cut /task_status throughput to a third.
async def get_backend(request: HTTPConnection) -> TaskBackend:
    """The backend created by :func:`yolo_api.app.create_app`."""
    return cast(TaskBackend, request.app.state.backend)


async def get_sweeps(request: HTTPConnection) -> SweepBackend:
    """The backend as a :class:`SweepBackend`; 501 for a backend that runs no sweeps."""
    backend = request.app.state.backend
    if not hasattr(backend, "submit_sweep"):
        raise ApiError(501, "not_served", {}, detail="this backend runs no sweeps")
    return cast(SweepBackend, backend)


async def get_lang(request: Request) -> str:
    """``en`` or ``zh`` from Accept-Language."""
    return request_lang(request)


async def get_caller(connection: HTTPConnection) -> Principal:
    """The authenticated caller; 401 without a valid bearer token."""
    who = await cast(Authenticator, connection.app.state.auth).authenticate(bearer_token(connection))
    if who is None:
        raise unauthenticated()
    return who


async def may(connection: HTTPConnection, who: Principal, action: str, namespace: str | None,
              resource: str = TRAININGS) -> bool:
    """Whether the caller may do ``action`` on ``resource`` (trainings unless said) in ``namespace``."""
    auth = cast(Authenticator, connection.app.state.auth)
    if resource == TRAININGS:  # the trainings' question keeps its three-argument form (any Authenticator answers it)
        return await auth.allowed(who, action, namespace)
    return await auth.allowed(who, action, namespace, resource)


async def require(connection: HTTPConnection, who: Principal, action: str, namespace: str | None,
                  resource: str = TRAININGS) -> None:
    """403 unless the caller may do ``action`` on ``resource`` in ``namespace``."""
    if not await may(connection, who, action, namespace, resource):
        raise forbidden(action, namespace, resource)


BackendDep = Annotated[TaskBackend, Depends(get_backend)]
SweepsDep = Annotated[SweepBackend, Depends(get_sweeps)]
LangDep = Annotated[str, Depends(get_lang)]
CallerDep = Annotated[Principal, Depends(get_caller)]
