"""``GET /tasks/{id}/artifacts`` and ``GET /tasks/{id}/artifacts/{name}``: a training's files over HTTP.

Both need the same right as reading the task (:func:`yolo_api.routes.tasks.readable`: another namespace's
task answers 404 like an unknown one). Only the run's own files are served: objects under its
``<output>/<task id>/`` prefix, files under its own run directory; a status naming anything else (the
trainer writes status, and a user may choose the trainer's image) gets 404, never a signed URL.

An artifact in object storage is answered with a 307 redirect to a short-lived presigned URL, so the bytes
never pass through the API; a file the API can read itself (the local backend's run directory) is
streamed. The list gives each artifact's size and sha256, which ``yoloctl download`` checks.

``?redirect=false`` answers the presigned URL as JSON instead of the 307, for clients that cannot read a
redirect's target: a browser's ``fetch`` follows it itself, where the dashboard's CSP (``connect-src 'self'``)
and most buckets' CORS rules stop it, so the dashboard asks for the URL and navigates to it.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from yolo_api.backends import TaskRecord
from yolo_api.deps import get_backend
from yolo_api.errors import ApiError
from yolo_api.routes.tasks import TaskId, readable
from yolo_api.settings import ApiSettings
from yolo_api.storage import StorageError, presigned_url
from yolo_crd.locations import is_s3, owned_uri
from yolo_crd.status import Artifact

router = APIRouter()
Name = Annotated[str, Path(max_length=255, description="an artifact's name: best.pt, last.pt, results.csv, ...")]
Redirect = Annotated[bool, Query(description="false: an artifact in object storage is answered with its "
                                             "presigned URL as JSON (data.url) instead of a 307 to it; a file is "
                                             "streamed anyway")]


def _artifacts(record: TaskRecord) -> list[Artifact]:
    return list(record.status.artifacts or []) if record.status else []


@router.get("/tasks/{task_id}/artifacts", summary="A training's artifacts: name, size, sha256 and download URL")
async def list_artifacts(task_id: TaskId, request: Request) -> dict[str, Any]:
    """Every artifact the trainer has stored so far (``last.pt`` during training, all of them at the end)."""
    record = await readable(request, task_id)
    items = [{"name": artifact.name, "size": artifact.size, "sha256": artifact.sha256,
              "url": str(request.url_for("download_artifact", task_id=record.task_id, name=artifact.name))}
             for artifact in _artifacts(record)]
    return {"code": 0, "message": "ok", "data": {"task_id": record.task_id, "artifacts": items}}


@router.get("/tasks/{task_id}/artifacts/{name}", summary="Download one artifact (307 to object storage, or the bytes)",
            response_class=Response, status_code=200,
            responses={307: {"description": "a presigned URL in object storage (Location)"},
                       200: {"description": "the bytes, or with redirect=false and object storage: "
                                            "{code: 0, data: {name, url, expires_in}}"},
                       404: {"description": "unknown task or artifact, or a file this API cannot reach"}})
async def download_artifact(task_id: TaskId, name: Name, request: Request, redirect: Redirect = True) -> Response:
    """Redirect to the artifact in object storage, or stream it from the local run directory."""
    record = await readable(request, task_id)
    artifact = next((a for a in _artifacts(record) if a.name == name), None)
    if artifact is None:
        raise ApiError(404, "not_found", {"task_id": record.task_id, "name": name[:255]},
                       detail=f"no artifact {name!r}; GET /tasks/{record.task_id}/artifacts lists them")
    settings: ApiSettings = request.app.state.settings
    if is_s3(artifact.uri):
        if not owned_uri(record.spec.get("output"), record.task_id, artifact.uri):  # the status names another's
            raise ApiError(404, "not_found", {"task_id": record.task_id, "name": name[:255]},
                           detail=f"{artifact.name} does not lie under this training's output; it is not served")
        try:
            url = presigned_url(artifact.uri, expires=settings.artifact_url_seconds,
                                public_endpoint=settings.s3_public_endpoint, filename=artifact.name)
        except StorageError as exc:
            raise ApiError(503, "unavailable", {"task_id": record.task_id, "name": name}, detail=str(exc)) from None
        if not redirect:
            return JSONResponse({"code": 0, "message": "ok", "data": {
                "name": artifact.name, "url": url, "expires_in": settings.artifact_url_seconds}},
                headers={"Cache-Control": "no-store"})
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    path = await run_in_threadpool((await get_backend(request)).artifact_file, record.task_id, artifact.uri)
    if path is None:
        raise ApiError(404, "not_found", {"task_id": record.task_id, "name": name},
                       detail=f"{artifact.uri} lies where this API cannot read it (the trainer's volume): give "
                              "trainings an output in object storage (output: s3://...) to download them over HTTP")
    return FileResponse(path, filename=artifact.name, media_type="application/octet-stream",
                        headers={"X-Checksum-Sha256": artifact.sha256})
