"""Local-mode path policy: model and data must resolve inside the allowed roots (no ``../../etc/passwd``)."""

from pathlib import Path
from typing import Any

from yolo_api.errors import invalid


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def confine(
    field: str, value: str, roots: list[Path], *, builtin_ok: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """Resolve ``value`` against the roots; return the absolute path, or an error entry for a 422.

    ``builtin_ok`` lets a bare architecture name such as ``yolov8n.yaml`` through when no such file
    exists: ultralytics resolves it from its own package.
    """
    raw = Path(value)
    if builtin_ok and raw.name == value and not raw.exists():
        return value, None
    resolved = raw.resolve() if raw.is_absolute() else (Path.cwd() / raw).resolve()
    if _inside(resolved, roots):
        return str(resolved), None
    allowed = ", ".join(str(root) for root in roots)
    return value, {"loc": ["body", field], "type": "path_not_allowed",
                   "msg": f"{field} must be a path inside the allowed roots ({allowed})"}


def confine_spec_paths(spec: dict[str, Any], roots: list[Path]) -> dict[str, Any]:
    """Return the spec with absolute model and data paths, or raise a 422 listing each bad path."""
    architecture = str(spec["model"]).endswith((".yaml", ".yml"))
    model, model_error = confine("model", spec["model"], roots, builtin_ok=architecture)
    data, data_error = confine("data", spec["data"], roots)
    errors = [error for error in (model_error, data_error) if error]
    if errors:
        raise invalid(errors)
    return {**spec, "model": model, "data": data}
