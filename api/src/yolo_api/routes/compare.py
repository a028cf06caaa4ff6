"""``GET /tasks/compare?ids=<id>,<id>``: two to six trainings side by side, for the dashboard and ``yoloctl compare``.

Each training is read exactly as ``GET /tasks/{task_id}`` reads it (:func:`yolo_api.routes.tasks.readable`: an
unknown id, or one in a namespace the caller may not read, is a 404 naming it), and is answered with its state,
final metrics, best epoch, the parameters it was trained with, its per-epoch history (the backend's, as
``GET /tasks/{task_id}/metrics`` answers it) and its quality gate. ``differing`` names the parameters whose values
are not the same in every training, so a client highlights them without comparing values itself.

The route is included before ``GET /tasks/{task_id}``, which would otherwise take ``compare`` for a task id.
"""

import asyncio
import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from yolo_api.backends import History, TaskRecord
from yolo_api.deps import get_backend, get_caller
from yolo_api.errors import invalid
from yolo_api.routes.tasks import readable
from yolo_crd.envelope import epoch_metrics_view
from yolo_crd.outcome import display_stage, task_state

router = APIRouter()

#: How many trainings one comparison takes: a chart with more than six curves is no longer readable.
MIN_TASKS: Final = 2
MAX_TASKS: Final = 6
#: A task id as the backends make them (a Kubernetes uid, the local backend's uuid): letters, digits, '-', '.', '_'.
TASK_ID: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,199}$")
#: The spec fields every comparison shows, then each hyperparameter, then these when a training sets them.
BASE_PARAMS: Final = ("model", "data", "epochs", "imgsz", "batch")
DELIVERY_PARAMS: Final = ("export", "exportTolerance", "successCriteria")
ALLOWED: Final = f"ids takes {MIN_TASKS} to {MAX_TASKS} distinct task ids, comma-separated (ids=<id>,<id>)"

Ids = Annotated[list[str] | None, Query(description=(
    f"{MIN_TASKS} to {MAX_TASKS} distinct task ids, comma-separated (the parameter may also be repeated)"))]


def parse_ids(given: list[str] | None) -> list[str]:
    """The task ids of ``?ids=``, in the order given; a 422 saying what is allowed for fewer than two, more than
    six, a duplicate or a malformed id."""
    ids = [part.strip() for value in given or [] for part in value.split(",")]

    def refuse(problem: str) -> Exception:
        return invalid([{"loc": ["query", "ids"], "msg": f"{problem}: {ALLOWED}", "type": "value_error"}])

    if not any(ids):
        raise refuse("no task id given")
    malformed = next((task_id for task_id in ids if not TASK_ID.match(task_id)), None)
    if malformed is not None:
        raise refuse(f"{malformed[:200]!r} is not a task id" if malformed else "an empty task id (two commas)")
    if len(ids) < MIN_TASKS or len(ids) > MAX_TASKS:
        raise refuse(f"{len(ids)} task id{'s' if len(ids) != 1 else ''} given")
    repeated = next((task_id for index, task_id in enumerate(ids) if task_id in ids[:index]), None)
    if repeated is not None:
        raise refuse(f"{repeated} is given twice")
    return ids


def params(spec: dict[str, Any]) -> dict[str, Any]:
    """What a training was trained with: the base spec fields, each hyperparameter under its own name, and the
    delivery fields (exports, their tolerance, success criteria) when set. ``spec`` is the wire (camelCase) spec."""
    shown: dict[str, Any] = {name: spec.get(name) for name in BASE_PARAMS}
    hyperparameters = spec.get("hyperparameters") or {}
    shown.update({name: hyperparameters[name] for name in sorted(hyperparameters) if name not in shown})
    shown.update({name: spec[name] for name in DELIVERY_PARAMS if spec.get(name) is not None})
    return shown


def differing(rows: list[dict[str, Any]]) -> list[str]:
    """The parameter names whose values are not all equal (a parameter one training lacks differs too), in the
    order they first appear."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    missing = object()
    return [name for name in names if len({repr(row.get(name, missing)) for row in rows}) > 1]


def compared(record: TaskRecord, history: History) -> dict[str, Any]:
    """One training's entry of the comparison, with its history as the backend has it (whole or sampled)."""
    status = record.status
    gate = status.quality_gate if status else None
    return {
        "task_id": record.task_id, "name": record.name, "state": task_state(status).value,
        "stage": display_stage(status),
        "final_metrics": status.final_metrics.view() if status and status.final_metrics else None,
        "best_epoch": status.best_epoch if status else None,
        "params": params(record.spec),
        "history": [epoch_metrics_view(epoch) for epoch in history.epochs], "complete": history.complete,
        "quality_gate": {"passed": gate.passed, "message": gate.message} if gate else None,
    }


@router.get("/tasks/compare", summary="Two to six trainings side by side: metrics, parameters, curves")
async def compare_tasks(request: Request, ids: Ids = None) -> dict[str, Any]:
    """The trainings in the order asked, each with its state, final metrics, best epoch, parameters, per-epoch
    history and quality gate, and ``differing``: the parameters whose values differ. 422 for fewer than two or
    more than six ids, a duplicate or a malformed one; 404 naming the first id the caller cannot read."""
    await get_caller(request)  # 401 before anything is said about the query
    records = [await readable(request, task_id) for task_id in parse_ids(ids)]
    backend = await get_backend(request)  # histories read at once: on a cluster each may be a results.csv in S3
    histories = await asyncio.gather(*(run_in_threadpool(backend.history, record.task_id) for record in records))
    tasks = [compared(record, history) for record, history in zip(records, histories, strict=True)]
    return {"code": 0, "message": "ok", "data": {"tasks": tasks,
                                                 "differing": differing([task["params"] for task in tasks])}}
