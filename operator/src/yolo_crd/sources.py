"""Training from a previous training: ``model: task/<id>`` or ``training/<name>`` resolved to its ``best.pt``.

Pure, so the API (refusing at submit with a 422), the operator (a kubectl-applied training never passes
through the API) and the local backend apply the same rules:

* the source must exist and have succeeded: an unknown, unfinished or failed source is refused, naming
  why (the operator fails such a training at once rather than waiting for the source: see docs/storage.md);
* its ``best.pt`` comes from its artifacts in object storage, or else from its weights path when that
  lies on a PersistentVolumeClaim the new training mounts too (the path is translated to where the new
  training mounts that claim); anything else is refused, saying what would make it reachable.

The resolved source travels to the trainer as ``YOLO_TRAINER_SOURCE`` (JSON); the trainer fetches the
weights, checks their sha256 and reports the lineage.
"""

from pathlib import PurePosixPath

from yolo_crd.locations import BEST, SourceRef, is_s3, within
from yolo_crd.outcome import TaskState, failure, task_state
from yolo_crd.spec import StorageSpec, YoloTrainingSpec
from yolo_crd.status import TrainingStatus
from yolo_crd.wire import WireModel


class SourceError(ValueError):
    """The source training cannot give its weights; the message says why and what to do."""


class ResolvedSource(WireModel):
    """The weights a training starts from, and the training they came from."""

    task: str  # the source's task id
    name: str | None = None  # the source's name (Kubernetes)
    weights: str  # s3://... or a path inside the new trainer
    sha256: str | None = None  # as the source reported it, checked by the trainer


def resolve(ref: SourceRef, uid: str | None, name: str | None, source_spec: dict[str, object] | None,
            status: TrainingStatus | None, target: YoloTrainingSpec | None, *, local: bool) -> ResolvedSource:
    """``ref``'s weights for ``target``; ``uid`` None means no such training. Raises :class:`SourceError`."""
    if uid is None:
        where = "" if local else " in this namespace"
        raise SourceError(f"model {ref}: no such training{where}")
    state = task_state(status)
    if state is TaskState.FAILURE:
        reason, error = failure(status)
        raise SourceError(f"model {ref}: that training failed ({reason or 'no reason'}: {error or ''}); it has no "
                          "weights to start from")
    if state is not TaskState.SUCCESS or status is None:
        raise SourceError(f"model {ref}: that training has not finished ({state.value}); submit this one after it "
                          "succeeded (kubectl wait --for=condition=Succeeded, or yoloctl watch)")
    best = next((artifact for artifact in status.artifacts or [] if artifact.name == BEST), None)
    if best is not None and is_s3(best.uri):
        return ResolvedSource(task=uid, name=name, weights=best.uri, sha256=best.sha256)
    path = best.uri if best is not None else status.weights_path
    if not path:
        raise SourceError(f"model {ref}: that training reported no weights")
    sha256 = best.sha256 if best is not None else None
    if local:
        return ResolvedSource(task=uid, name=name, weights=path, sha256=sha256)
    source_storage = StorageSpec.model_validate((source_spec or {}).get("storage") or {})
    mapped = _on_shared_claim(path, source_storage, target.storage if target else None)
    if mapped is None:
        raise SourceError(
            f"model {ref}: its weights {path} are not reachable from this training: they lie on "
            + (_claim_words(path, source_storage) or "the source trainer's scratch volume, gone with its pod")
            + "; give trainings an output in object storage (spec.output), or mount the same claim (spec.storage)")
    return ResolvedSource(task=uid, name=name, weights=mapped, sha256=sha256)


def _claim_of(path: str, storage: StorageSpec) -> tuple[str, PurePosixPath] | None:
    """(claim name, path inside the claim) of a path under one of ``storage``'s mounts (the deepest)."""
    found: tuple[int, str, PurePosixPath] | None = None
    for volume in storage.volumes:
        rel = within(path, volume.mount_path)
        depth = len(PurePosixPath(volume.mount_path).parts)
        if rel is not None and (found is None or depth > found[0]):
            found = (depth, volume.claim_name, PurePosixPath(volume.sub_path or "") / rel)
    return None if found is None else (found[1], found[2])


def _claim_words(path: str, storage: StorageSpec) -> str:
    claim = _claim_of(path, storage)
    return f"PersistentVolumeClaim {claim[0]!r}, which this training does not mount" if claim else ""


def _on_shared_claim(path: str, source: StorageSpec, target: StorageSpec | None) -> str | None:
    """Where ``path`` (a file on one of the source's claims) appears in the new trainer; None if nowhere."""
    claim = _claim_of(path, source)
    if claim is None or target is None:
        return None
    claim_name, inside = claim
    for volume in target.volumes:
        if volume.claim_name != claim_name:
            continue
        rel = within(str(PurePosixPath("/") / inside), str(PurePosixPath("/") / (volume.sub_path or "")))
        if rel is not None:
            return str(PurePosixPath(volume.mount_path) / rel)
    return None
