"""Local-mode path policy: model and data must resolve inside the allowed roots (no ``../../etc/passwd``)."""

from pathlib import Path
from typing import Any

from yolo_api.errors import invalid
from yolo_crd.locations import is_s3, source_ref


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def confine(
    field: str, value: str, roots: list[Path], *, builtin_ok: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """Resolve ``value`` against the roots; return the absolute path, or an error entry for a 422.

    ``builtin_ok`` lets a bare name such as ``yolov8n.yaml`` (an architecture ultralytics ships) or
    ``yolov8n.pt`` (weights it downloads when allowed) through when no such file exists here.
    """
    raw = Path(value)
    if builtin_ok and raw.name == value and not raw.exists():
        return value, None
    resolved = raw.resolve() if raw.is_absolute() else (Path.cwd() / raw).resolve()
    if _inside(resolved, roots):
        return str(resolved), None
    allowed = ", ".join(str(root) for root in roots)
    return value, {"loc": ["body", field], "type": "path_not_allowed",
                   "msg": f"{field} must be a path inside the allowed roots (YOLO_API_ALLOWED_ROOTS: {allowed})"}


def confine_spec_paths(spec: dict[str, Any], roots: list[Path]) -> dict[str, Any]:
    """Return the spec with absolute model and data paths, or raise a 422 listing each bad path.

    ``s3://`` URIs and references to earlier trainings (``task/<id>``) are not paths and stay as they are.
    A bare ``.pt`` name stays bare unless such a file exists here: the trainer downloads it when
    ``YOLO_TRAINER_ALLOW_DOWNLOADS=true`` (inherited from the API's environment), or fails saying downloads are off.
    """
    builtin = str(spec["model"]).endswith((".yaml", ".yml", ".pt"))
    remote_model = is_s3(spec["model"]) or source_ref(spec["model"]) is not None  # object storage, a training
    model, model_error = (spec["model"], None) if remote_model else confine("model", spec["model"], roots,
                                                                           builtin_ok=builtin)
    data, data_error = (spec["data"], None) if is_s3(spec["data"]) else confine("data", spec["data"], roots)
    errors = [error for error in (model_error, data_error) if error]
    if errors:
        raise invalid(errors)
    return {**spec, "model": model, "data": data}
