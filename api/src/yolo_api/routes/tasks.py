"""``POST /train``, ``GET /task_status/{task_id}`` and the task-management routes."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from yolo_api import admission
from yolo_api.auth import CREATE, DELETE, GET, LIST
from yolo_api.backends import TaskBackend, TaskRecord
from yolo_api.deps import BackendDep, CallerDep, LangDep, get_backend, get_caller, may, require
from yolo_api.errors import ApiError, request_lang, task_not_found, task_reaped
from yolo_api.models import TrainRequest
from yolo_crd.envelope import epoch_metrics_view, message

router = APIRouter()
#: ``GET /tasks/{task_id}`` would also match ``/tasks/events``: it is included after the events router, while
#: the hot ``/task_status/{task_id}`` stays first of all (each route tried before it costs every poll).
details = APIRouter()

TaskId = Annotated[str, Path(max_length=200, description="the task id returned by POST /train")]


async def readable(request: Request, task_id: str) -> TaskRecord:
    """The task, if it exists and the caller may read its namespace; else 404 (no existence oracle).

    A task the backend's index does not hold (yet: created a moment ago through another replica) is
    looked up at its source before the answer is 404; a finished one that was deleted (reaped by its TTL)
    answers 404 saying so, to whoever may read its namespace.
    """
    who = await get_caller(request)
    backend = await get_backend(request)
    record = backend.get(task_id) or await run_in_threadpool(backend.lookup, task_id)
    if record is None:
        gone = backend.reaped(task_id)
        if gone is not None and await may(request, who, GET, gone.namespace):
            raise task_reaped(gone)
    if record is None or not await may(request, who, GET, record.namespace):
        raise task_not_found(task_id)
    return record


@router.post("/train", status_code=200, summary="Submit a training")
async def train(body: TrainRequest, backend: BackendDep, lang: LangDep, who: CallerDep, request: Request
                ) -> dict[str, Any]:
    """Create a training; answers ``{code: 0, message: 任务已提交, data: {task_id, status: pending}}``."""
    await require(request, who, CREATE, backend.namespace_for(body.namespace))
    spec = body.spec if body.names_gpus() else body.spec.model_copy(update={"gpus": backend.default_gpus()})
    admission.check(spec, request.app.state.settings)  # 422 for a Secret (image, PriorityClass) not allowed
    record = await run_in_threadpool(backend.submit, spec, body.name, body.namespace)
    return {"code": 0, "message": message("submitted", lang), "data": {"task_id": record.task_id, "status": "pending"}}


@router.get("/task_status/{task_id}", summary="Status of one training (the spec's envelope)",
            response_class=Response, responses={200: {"description": "pending, progress or success"},
                                                404: {"description": "unknown task id"},
                                                500: {"description": "the training failed"}})
async def task_status(task_id: TaskId, request: Request) -> Response:
    """The spec's four shapes; 404 with code 1 for an unknown id; 500 with code 1 for a failed training.

    The hot path of every poller: a cached token check, one dict lookup and a body serialised once per status
    change. It reads from the request instead of through dependencies: solving them cost a sixth of throughput.
    """
    record = await readable(request, task_id)
    code, body = record.rendered(request_lang(request))
    return Response(body, status_code=code, media_type="application/json")


async def visible_namespaces(request: Request, backend: TaskBackend) -> set[str] | None:
    """The namespaces whose trainings the caller may list; None: all of them."""
    who = await get_caller(request)
    if await may(request, who, LIST, None):
        return None
    return {ns for ns in sorted(backend.namespaces()) if await may(request, who, LIST, ns)}


StateFilter = Literal["pending", "progress", "success", "failure", "cancelled"]


@router.get("/tasks", summary="List trainings, newest first")
async def list_tasks(
    backend: BackendDep,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[StateFilter | None, Query(description="only trainings in this state (failure includes "
                                                              "cancelled)")] = None,
) -> dict[str, Any]:
    """A page of the trainings the caller may list: state, epoch, progress, latest mAP, paths, hyperparameters.

    Each row says where a training is in two fields, both kept for clients that read either:

    - ``status``: the spec's state, exactly ``data.status`` of ``GET /task_status/{task_id}``: ``pending``,
      ``progress``, ``success`` or ``failure`` (a cancelled training is a ``failure``);
    - ``state``: the same, but ``cancelled`` for a training that was cancelled: what the ``?status=`` filter and
      the dashboard use (``?status=failure`` matches both failed and cancelled trainings).

    ``phase`` is the Kubernetes-style phase the state implies (``Pending``, ``Running``, ``Succeeded``,
    ``Failed``). ``can_cancel`` says whether the caller may cancel an unfinished one (the dashboard's cancel button).
    """
    namespaces = await visible_namespaces(request, backend)
    records, total = await run_in_threadpool(backend.list, offset, limit, namespaces, status)
    who = await get_caller(request)
    items = []
    for record in records:
        item = record.summary()
        item["can_cancel"] = item["status"] in ("pending", "progress") and await may(request, who, DELETE,
                                                                                        record.namespace)
        items.append(item)
    return {"code": 0, "message": "ok", "data": {"total": total, "offset": offset, "limit": limit, "items": items}}


@details.get("/tasks/{task_id}", summary="One training's summary (the row of GET /tasks)")
async def task_summary(task_id: TaskId, request: Request) -> dict[str, Any]:
    """The same fields as an item of ``GET /tasks`` (``status``: the spec's state; ``state``: the same but
    ``cancelled`` for a cancelled training), for a deep link to one training."""
    record = await readable(request, task_id)
    item = record.summary()
    who = await get_caller(request)
    item["can_cancel"] = item["status"] in ("pending", "progress") and await may(request, who, DELETE, record.namespace)
    return {"code": 0, "message": "ok", "data": item}


@router.get("/tasks/{task_id}/logs", summary="The end of a training's log (local backend)",
            response_class=PlainTextResponse)
async def task_logs(task_id: TaskId, request: Request,
                    max_bytes: Annotated[int, Query(ge=1, le=4_000_000)] = 64_000) -> PlainTextResponse:
    """The last ``max_bytes`` of the trainer's output, for whoever may read the task; 404 before there is one."""
    await readable(request, task_id)
    text = await run_in_threadpool((await get_backend(request)).logs, task_id, max_bytes)
    if text is None:
        raise ApiError(404, "not_found", {"task_id": task_id[:200]}, detail="the trainer has written no log yet")
    return PlainTextResponse(text)


@router.delete("/tasks/{task_id}", summary="Cancel a training")
async def cancel_task(task_id: TaskId, backend: BackendDep, lang: LangDep, who: CallerDep, request: Request
                      ) -> JSONResponse:
    """Stop a training; a finished one is left as it is. Answers its envelope after cancelling: 200 with the
    verdict (cancelled, or the success the cancel came too late for), or 202 while the operator has still
    to conclude (message ``cancel requested``; the envelope shows where the training is)."""
    await require(request, who, DELETE, (await readable(request, task_id)).namespace)
    record = await run_in_threadpool(backend.cancel, task_id)
    if record is None:
        raise task_not_found(task_id)
    code, body = record.envelope(lang)
    if not record.final():
        body["message"] = message("cancel_requested", lang)
        return JSONResponse(body, status_code=202)
    body["message"] = message("cancelled", lang) if body["data"].get("error") == "cancelled" else body["message"]
    return JSONResponse(body, status_code=200 if code == 500 else code)


@router.get("/tasks/{task_id}/metrics", summary="Per-epoch metrics of a training")
async def task_metrics(task_id: TaskId, request: Request) -> dict[str, Any]:
    """The per-epoch history (for loss and mAP curves) and the best epoch.

    ``complete`` says whether every epoch is there: the whole results.csv, or the bounded sample that the
    resource's status carries (at most 59 epochs, evenly spaced, the latest and the best).
    """
    record = await readable(request, task_id)
    status = record.status
    history = await run_in_threadpool((await get_backend(request)).history, task_id)
    return {"code": 0, "message": "ok", "data": {
        "task_id": task_id, "best_epoch": status.best_epoch if status else None,
        "epochs": [epoch_metrics_view(m) for m in history.epochs], "complete": history.complete,
        "final_metrics": status.final_metrics.wire() if status and status.final_metrics else None}}
