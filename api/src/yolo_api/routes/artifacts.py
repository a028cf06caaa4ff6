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

``?inline=true`` is the one exception to "the bytes never pass through the API": a plot (kind ``plot``: a PNG
or JPEG of at most 8 MiB) is answered as its bytes, with its image media type and ``Content-Disposition:
inline``, from object storage too (read with the API's credentials, under the same ownership check). The
dashboard's gallery fetches them with its bearer token, which a presigned redirect or an ``<img src>`` cannot
carry; anything else asked for inline is a 422 that says to download it instead. The list gives each
artifact's ``kind`` (weights, metrics, config, plot, export); exports download like weights.
"""

from pathlib import Path as FilePath
from pathlib import PurePosixPath
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from yolo_api.backends import TaskRecord
from yolo_api.deps import get_backend
from yolo_api.errors import ApiError, invalid
from yolo_api.routes.tasks import TaskId, readable
from yolo_api.settings import ApiSettings
from yolo_api.storage import StorageError, presigned_url, read_bytes
from yolo_crd.locations import ARGS, BEST, DATA, LAST, RESULTS, is_s3, owned_uri
from yolo_crd.status import Artifact

router = APIRouter()
Name = Annotated[str, Path(max_length=255, description="an artifact's name: best.pt, last.pt, results.csv, ...")]
Redirect = Annotated[bool, Query(description="false: an artifact in object storage is answered with its "
                                             "presigned URL as JSON (data.url) instead of a 307 to it; a file is "
                                             "streamed anyway")]
Inline = Annotated[bool, Query(description="true: a plot (PNG or JPEG, at most 8 MiB) is answered as its bytes with "
                                           "its image media type and Content-Disposition: inline, from object "
                                           "storage too; any other artifact is a 422")]

#: The most bytes ``?inline=true`` passes through the API (ultralytics' plots are tens to hundreds of KiB).
INLINE_LIMIT: Final = 8 * 1024 * 1024
#: Media types of the images served inline, by suffix, with the bytes each must start with.
IMAGE_TYPES: Final = {".png": ("image/png", b"\x89PNG\r\n\x1a\n"), ".jpg": ("image/jpeg", b"\xff\xd8\xff"),
                      ".jpeg": ("image/jpeg", b"\xff\xd8\xff")}
#: The kind of the run's own files in statuses written before artifacts had one.
OLDER_KINDS: Final = {BEST: "weights", LAST: "weights", RESULTS: "metrics", ARGS: "config", DATA: "config"}


def _artifacts(record: TaskRecord) -> list[Artifact]:
    return list(record.status.artifacts or []) if record.status else []


def kind_of(artifact: Artifact) -> str | None:
    """The artifact's kind as the trainer reported it, or, from an older trainer that did not, the kind of the
    run's own files by name (None for anything else)."""
    return artifact.kind or OLDER_KINDS.get(artifact.name)


@router.get("/tasks/{task_id}/artifacts", summary="A training's artifacts: name, size, sha256 and download URL")
async def list_artifacts(task_id: TaskId, request: Request) -> dict[str, Any]:
    """Every artifact the trainer has stored so far (``last.pt`` during training, all of them at the end), with
    its kind: ``weights``, ``metrics``, ``config``, ``plot`` or ``export``."""
    record = await readable(request, task_id)
    items = [{"name": artifact.name, "kind": kind_of(artifact), "size": artifact.size, "sha256": artifact.sha256,
              "url": str(request.url_for("download_artifact", task_id=record.task_id, name=artifact.name))}
             for artifact in _artifacts(record)]
    return {"code": 0, "message": "ok", "data": {"task_id": record.task_id, "artifacts": items}}


@router.get("/tasks/{task_id}/artifacts/{name}", summary="Download one artifact (307 to object storage, or the bytes)",
            response_class=Response, status_code=200,
            responses={307: {"description": "a presigned URL in object storage (Location)"},
                       200: {"description": "the bytes, or with redirect=false and object storage: "
                                            "{code: 0, data: {name, url, expires_in}}"},
                       404: {"description": "unknown task or artifact, or a file this API cannot reach"}})
async def download_artifact(task_id: TaskId, name: Name, request: Request, redirect: Redirect = True,
                            inline: Inline = False) -> Response:
    """Redirect to the artifact in object storage, or stream it from the local run directory; with ``inline``,
    answer a plot's image bytes (see the module docstring)."""
    record = await readable(request, task_id)
    artifact = next((a for a in _artifacts(record) if a.name == name), None)
    if artifact is None:
        raise ApiError(404, "not_found", {"task_id": record.task_id, "name": name[:255]},
                       detail=f"no artifact {name!r}; GET /tasks/{record.task_id}/artifacts lists them")
    settings: ApiSettings = request.app.state.settings
    if is_s3(artifact.uri) and not owned_uri(record.spec.get("output"), record.task_id, artifact.uri):
        raise ApiError(404, "not_found", {"task_id": record.task_id, "name": name[:255]},  # the status names another's
                       detail=f"{artifact.name} does not lie under this training's output; it is not served")
    if inline:
        return await _inline(request, record, artifact)
    if is_s3(artifact.uri):
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
    path = await _local_file(request, record, artifact)
    return FileResponse(path, filename=artifact.name, media_type="application/octet-stream",
                        headers={"X-Checksum-Sha256": artifact.sha256})


async def _local_file(request: Request, record: TaskRecord, artifact: Artifact) -> FilePath:
    """The artifact's file where this API can read it; a 404 saying why not otherwise."""
    path = await run_in_threadpool((await get_backend(request)).artifact_file, record.task_id, artifact.uri)
    if path is None:
        raise ApiError(404, "not_found", {"task_id": record.task_id, "name": artifact.name},
                       detail=f"{artifact.uri} lies where this API cannot read it (the trainer's volume): give "
                              "trainings an output in object storage (output: s3://...) to download them over HTTP")
    return path


def _not_inline(artifact: Artifact, why: str) -> ApiError:
    return invalid([{"loc": ["query", "inline"], "type": "value_error",
                     "msg": f"{artifact.name} {why}: inline=true serves plot images (PNG or JPEG) of at most 8 MiB; "
                            "download it without inline"}])


def _read_file(path: FilePath) -> bytes | None:
    with path.open("rb") as handle:
        data = handle.read(INLINE_LIMIT + 1)
    return None if len(data) > INLINE_LIMIT else data


async def _inline(request: Request, record: TaskRecord, artifact: Artifact) -> Response:
    """A plot's bytes with its image media type, ``Content-Disposition: inline`` and its sha256 as ETag (a
    browser revalidates instead of fetching it again); a local file or an object of the run's own output."""
    kind, media = kind_of(artifact), IMAGE_TYPES.get(PurePosixPath(artifact.name).suffix.lower())
    if kind != "plot":
        raise _not_inline(artifact, f"is not a plot (its kind: {kind})" if kind else "is not a plot")
    if media is None:
        raise _not_inline(artifact, "is not a PNG or JPEG image")
    if artifact.size > INLINE_LIMIT:
        raise _not_inline(artifact, f"is {artifact.size} bytes")
    tag = f'"{artifact.sha256}"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "X-Checksum-Sha256": artifact.sha256,
               "X-Content-Type-Options": "nosniff"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if is_s3(artifact.uri):
        try:
            data = await run_in_threadpool(lambda: read_bytes(artifact.uri, max_bytes=INLINE_LIMIT))
        except StorageError as exc:
            raise ApiError(404 if exc.missing else 503, "not_found" if exc.missing else "unavailable",
                           {"task_id": record.task_id, "name": artifact.name}, detail=str(exc)) from None
    else:
        data = await run_in_threadpool(_read_file, await _local_file(request, record, artifact))
    if data is None:
        raise _not_inline(artifact, f"is more than {INLINE_LIMIT} bytes")
    if not data.startswith(media[1]):
        raise _not_inline(artifact, f"is not a {media[0].removeprefix('image/').upper()} image")
    safe = "".join(char if char.isascii() and (char.isalnum() or char in "._-") else "_" for char in artifact.name)
    return Response(data, media_type=media[0], headers={**headers, "Content-Disposition": f'inline; filename="{safe}"'})
