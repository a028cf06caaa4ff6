"""``/sweeps``: submit, list, read and cancel hyperparameter sweeps, in either backend (:class:`SweepBackend`).

Each route is authorized as the trainings' routes are, on the resource ``yolosweeps``: ``create`` to submit in a
namespace, ``list`` to list (per namespace unless cluster-wide), ``get`` to read one, ``delete`` to cancel. A
sweep in a namespace the caller may not read answers 404, exactly as an unknown id (no existence oracle). A
sweep's trials are trainings: each row carries its ``task_id`` for ``/task_status`` and ``/tasks/{task_id}``,
which need the trainings' own rights.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from yolo_api import admission
from yolo_api.auth import CREATE, DELETE, GET, LIST, SWEEPS, Principal
from yolo_api.backends.sweeps import SweepBackend, SweepRecord
from yolo_api.deps import BackendDep, CallerDep, LangDep, SweepsDep, may, require
from yolo_api.errors import ApiError, invalid, sweep_message, sweep_not_found
from yolo_api.models import SweepRequest
from yolo_crd.status import Reason

router = APIRouter()

SweepId = Annotated[str, Path(max_length=200, description="the sweep id returned by POST /sweeps")]
SweepState = Literal["pending", "running", "succeeded", "failed"]


async def readable_sweep(request: Request, who: Principal, sweeps: SweepBackend, sweep_id: str) -> SweepRecord:
    """The sweep, if it exists and the caller may read its namespace; else 404."""
    record = sweeps.get_sweep(sweep_id)
    if record is None or not await may(request, who, GET, record.namespace, SWEEPS):
        raise sweep_not_found(sweep_id)
    return record


async def row(request: Request, who: Principal, record: SweepRecord) -> dict[str, Any]:
    """A sweep's summary, with ``can_cancel`` for the caller (unfinished, and ``delete`` allowed)."""
    item = record.summary()
    item["can_cancel"] = not record.final() and await may(request, who, DELETE, record.namespace, SWEEPS)
    return item


@router.post("/sweeps", summary="Submit a hyperparameter sweep")
async def submit_sweep(who: CallerDep, body: SweepRequest, sweeps: SweepsDep, backend: BackendDep, lang: LangDep,
                       request: Request) -> dict[str, Any]:
    """Create a sweep: its ``template`` is a ``POST /train`` body (validated as one), ``parameters`` the space to
    search, ``algorithm`` grid, random or tpe with a ``seed``, ``objective``, ``maxTrials`` (at most 200),
    ``parallelism`` and ``earlyStopping``. Answers ``{code: 0, message, data: {sweep_id, name, namespace,
    state: pending}}``; 422 naming each field that is wrong, 409 when the name is taken."""
    await require(request, who, CREATE, backend.namespace_for(body.namespace), SWEEPS)
    try:
        spec = body.sweep(backend.default_gpus())
    except ValueError as exc:  # the backend's default GPUs do not fit the template (a device names others)
        raise invalid([{"loc": ["body", "template"], "msg": str(exc), "type": "value_error"}]) from None
    try:
        admission.check(spec.template, request.app.state.settings)
    except ApiError as exc:  # the same refusal as POST /train's, located in the template
        for error in exc.data.get("errors") or []:
            error["loc"] = ["body", "template", *error["loc"][1:]]
        raise
    record = await run_in_threadpool(sweeps.submit_sweep, spec, body.name, body.namespace)
    return {"code": 0, "message": sweep_message("sweep_submitted", lang),
            "data": {"sweep_id": record.sweep_id, "name": record.name, "namespace": record.namespace,
                     "state": record.state()}}


@router.get("/sweeps", summary="List sweeps, newest first")
async def list_sweeps(
    who: CallerDep,
    sweeps: SweepsDep,
    request: Request,
    state: Annotated[SweepState | None, Query(description="only sweeps in this state")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """A page of the sweeps the caller may list: phase, counts, best trial, algorithm, objective, budget (no trial
    table: ``GET /sweeps/{sweep_id}`` has it), and ``can_cancel``."""
    records = await run_in_threadpool(sweeps.list_sweeps, None)
    if not await may(request, who, LIST, None, SWEEPS):
        visible = {ns for ns in sorted({r.namespace or "" for r in records})
                   if await may(request, who, LIST, ns or None, SWEEPS)}
        records = [r for r in records if (r.namespace or "") in visible]
    if state is not None:
        records = [r for r in records if r.state() == state]
    items = [await row(request, who, record) for record in records[offset: offset + limit]]
    return {"code": 0, "message": "ok", "data": {"total": len(records), "offset": offset, "limit": limit,
                                                 "items": items}}


@router.get("/sweeps/{sweep_id}", summary="One sweep: status, best trial and every trial")
async def get_sweep(sweep_id: SweepId, who: CallerDep, sweeps: SweepsDep, request: Request) -> dict[str, Any]:
    """The sweep's summary, its spec and every trial sorted by objective (best first): ``trial`` (its number),
    ``name``, ``task_id`` (for ``/task_status``), ``state`` (pending, running, succeeded, failed, earlyStopped),
    ``objective``, ``epoch``, ``parameters``, ``reason``."""
    record = await readable_sweep(request, who, sweeps, sweep_id)
    trials = await run_in_threadpool(sweeps.sweep_trials, sweep_id)
    data = record.detail(trials)
    data["can_cancel"] = not record.final() and await may(request, who, DELETE, record.namespace, SWEEPS)
    return {"code": 0, "message": "ok", "data": data}


@router.delete("/sweeps/{sweep_id}", summary="Cancel a sweep")
async def cancel_sweep(sweep_id: SweepId, who: CallerDep, sweeps: SweepsDep, lang: LangDep, request: Request
                       ) -> JSONResponse:
    """Cancel: running trials are cancelled and no more start. 200 with the sweep once it is over (cancelled, or
    finished before); 202 while its trials are still being cancelled (on a cluster, until the operator concludes)."""
    record = await readable_sweep(request, who, sweeps, sweep_id)
    await require(request, who, DELETE, record.namespace, SWEEPS)
    if not record.final():
        cancelled = await run_in_threadpool(sweeps.cancel_sweep, sweep_id)
        if cancelled is None:
            raise sweep_not_found(sweep_id)
        if not cancelled.final():
            body = {"code": 0, "message": sweep_message("sweep_cancel_requested", lang), "data": cancelled.summary()}
            return JSONResponse(body, status_code=202)
        record = cancelled
    key = "sweep_cancelled" if record.status.reason == Reason.CANCELLED.value else "sweep_finished"
    return JSONResponse({"code": 0, "message": sweep_message(key, lang), "data": record.summary()})
