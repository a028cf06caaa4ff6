"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yolo_api.deps import BackendDep

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
