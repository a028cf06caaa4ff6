"""Liveness and readiness probes, and the Prometheus endpoint."""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yolo_api.auth import METRICS, forbidden
from yolo_api.deps import BackendDep, get_caller, may

router = APIRouter()


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness")
async def readyz(backend: BackendDep) -> JSONResponse:
    """503 until the backend can answer correctly (Kubernetes: the first LIST of trainings is in)."""
    ready = backend.ready()
    return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """The exposition format; needs a token allowed ``get /metrics`` unless ``metrics_public`` is set."""
    if not request.app.state.settings.metrics_public:
        who = await get_caller(request)
        if not await may(request, who, METRICS, None):
            raise forbidden("get", None, resource="/metrics")
    registry = request.app.state.registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
