"""``create_app()``: the FastAPI application over a backend chosen by the settings."""

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yolo_api.auth import Authenticator, NoAuth, StaticToken, load_or_create_token
from yolo_api.backends import TaskBackend
from yolo_api.errors import http_message, install_error_handlers, language
from yolo_api.metrics import RequestMetrics, TrainingCollector, register_process_collectors
from yolo_api.routes import artifacts, compare, events, health, sweeps, tasks, ui
from yolo_api.settings import ApiSettings

log = logging.getLogger(__name__)


def make_backend(settings: ApiSettings) -> TaskBackend:
    """The backend the settings name."""
    if settings.backend == "kubernetes":
        from yolo_api.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(settings)
    from yolo_api.backends.local import LocalBackend

    return LocalBackend(settings)


def make_authenticator(settings: ApiSettings, backend: TaskBackend) -> Authenticator:
    """The authenticator the settings name; ``none`` only when asked for, with a warning."""
    mode = settings.auth_mode()
    if mode == "none":
        log.warning("authentication is OFF (YOLO_API_AUTH=none): anyone who reaches %s:%s may submit and cancel",
                    settings.host, settings.port)
        return NoAuth()
    if mode == "token":
        if settings.auth_token is not None:
            return StaticToken(settings.auth_token.get_secret_value())
        return StaticToken(load_or_create_token(settings.auth_token_file or settings.state_dir / "api-token"))
    from yolo_api.auth_kubernetes import KubernetesAuth
    from yolo_io.kubeclient import load_api_client

    api_client = getattr(backend, "api_client", None) or load_api_client()
    return KubernetesAuth(api_client, cache_seconds=settings.auth_cache_seconds)


OPEN_ROUTES = frozenset({"/", "/healthz", "/readyz"})


def document_bearer_auth(app: FastAPI) -> None:
    """Declare the bearer token in the OpenAPI schema, so that /docs offers "Authorize" and clients see it.

    Routes check tokens themselves (the hot path avoids FastAPI's dependency machinery), so the scheme
    is added to the generated schema rather than through security dependencies.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "local: the API token; on a cluster: your Kubernetes token"}}
            for path, operations in schema.get("paths", {}).items():
                if path not in OPEN_ROUTES:
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class BodyLimit:
    """Pure ASGI middleware: answer 413 to request bodies over ``limit`` bytes before they are parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count body bytes as they arrive; refuse early on Content-Length."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        lang = language(headers.get(b"accept-language", b"").decode("latin-1"))
        body = json.dumps({"code": 1, "message": http_message(413, lang, "request body too large"),
                           "data": {"limit_bytes": self.limit}}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: ApiSettings | None = None, backend: TaskBackend | None = None,
               authenticator: Authenticator | None = None) -> FastAPI:
    """Build the application; tests pass their own settings, backend or authenticator."""
    settings = settings or ApiSettings()
    chosen = backend or make_backend(settings)
    auth = authenticator or make_authenticator(settings, chosen)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen.start()
        try:
            yield
        finally:
            chosen.stop()

    # FastAPIOffline: /docs and /redoc served with their scripts from the fastapi-offline package, not a CDN
    app = FastAPIOffline(title="YOLO training API", version="0.1.0", lifespan=lifespan,
                         static_url="/docs-static",
                         description="Submit YOLOv8 trainings and follow them (the task-status envelope: "
                                     "docs/task-status-api.md).")
    app.state.backend = chosen
    app.state.settings = settings
    app.state.auth = auth
    install_error_handlers(app)
    document_bearer_auth(app)
    app.include_router(tasks.router)  # first: /task_status/{task_id} is matched on every poll
    app.include_router(events.router)
    app.include_router(compare.router)  # before GET /tasks/{task_id}, which would take "compare" for a task id
    app.include_router(tasks.details)  # after /tasks/events, which GET /tasks/{task_id} would shadow
    app.include_router(artifacts.router)
    app.include_router(sweeps.router)
    app.include_router(ui.router)
    app.mount("/ui/static", ui.static_files(), name="ui-static")
    app.include_router(health.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.state.registry = CollectorRegistry()
    app.state.registry.register(TrainingCollector(chosen, settings.metrics_retention_seconds))
    register_process_collectors(app.state.registry)
    app.add_middleware(RequestMetrics, registry=app.state.registry)  # outermost: counts 413s too
    return app
