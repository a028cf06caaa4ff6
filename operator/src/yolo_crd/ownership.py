"""Who writes which status field: the trainer or the operator (the local backend in its place), never both.

Two writers on one field race: an operator restarting mid-training would turn the trainer's
``stage: training`` back into ``scheduling``. So each field has exactly one owner; where both sides have
something to say they say it in different fields (the trainer's ``trainingFailure``, the operator's
``reason``/``message``), and :mod:`yolo_crd.outcome` composes what users see. Every status patch goes
through :func:`check` before it is sent, which raises :class:`OwnershipError` for a field its writer does
not own. The operator's gateway and the local backend let it propagate: the write fails, in tests and at
run time. The trainer's reporter logs it as an error and sends only its own fields, since reporting never
stops a training. The API writes no status at all.
"""

from collections.abc import Mapping
from typing import Any, Final, Literal

Writer = Literal["trainer", "operator"]

#: Status fields the trainer writes (camelCase, as on the wire).
TRAINER_FIELDS: Final = frozenset({
    "stage", "currentEpoch", "totalEpochs", "progress", "metrics", "bestEpoch", "history",
    "finalMetrics", "weightsPath", "projectPath", "stopReason", "resumedFromEpoch", "trainingFailure",
    "datasetSkipped", "artifacts", "lineage", "download", "lastUpdateTime", "exports", "exportProgress",
    "qualityGate",
})
#: Status fields the operator writes (the local backend plays the operator's part on one machine).
OPERATOR_FIELDS: Final = frozenset({
    "phase", "conditions", "reason", "message", "jobName", "observedGeneration", "startTime", "completionTime",
})
FIELDS: Final[dict[Writer, frozenset[str]]] = {"trainer": TRAINER_FIELDS, "operator": OPERATOR_FIELDS}


class OwnershipError(ValueError):
    """A status patch names a field that its writer does not own."""


def check(writer: Writer, patch: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return ``patch`` if ``writer`` owns every field it sets or clears; raise :class:`OwnershipError` if not."""
    foreign = sorted(set(patch) - FIELDS[writer])
    if foreign:
        raise OwnershipError(f"the {writer} does not own status field(s) {', '.join(foreign)}")
    return patch
