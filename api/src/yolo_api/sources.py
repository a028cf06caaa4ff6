"""``model: task/<id>`` and ``training/<name>`` checked at submit: an unknown, unfinished or failed source is a 422.

The rules are the contract's (:mod:`yolo_crd.sources`); here they meet the API's records. A source in another
namespace answers as unknown (no existence oracle across namespaces), like ``GET /task_status``.
"""

from collections.abc import Callable

from yolo_api.backends import TaskRecord
from yolo_api.errors import invalid
from yolo_crd.locations import SourceRef, source_ref
from yolo_crd.outcome import TaskState
from yolo_crd.sources import ResolvedSource, SourceError, resolve
from yolo_crd.spec import YoloTrainingSpec

Lookup = Callable[[SourceRef], TaskRecord | None]


def check_source(spec: YoloTrainingSpec, lookup: Lookup, *, namespace: str | None, local: bool
                 ) -> ResolvedSource | None:
    """The source's weights when ``spec.model`` names an earlier training; None otherwise; a 422 if unusable."""
    ref = source_ref(spec.model)
    if ref is None:
        return None
    try:
        if local and ref.kind == "training":
            raise SourceError(f"model {ref}: local trainings have no unique names; use task/<task id>")
        record = lookup(ref)
        if record is not None and record.namespace != namespace:
            record = None
        if record is not None and record.is_cancelled():
            raise SourceError(f"model {ref}: that training was cancelled; it has no weights to start from")
        if record is not None and record.state() is TaskState.FAILURE and record.status is None:
            raise SourceError(f"model {ref}: that training failed; it has no weights to start from")
        return resolve(ref, record.task_id if record else None, record.name if record else None,
                       record.spec if record else None, record.status if record else None, spec, local=local)
    except SourceError as exc:
        raise invalid([{"loc": ["body", "model"], "type": "source_not_usable", "msg": str(exc)}]) from None
