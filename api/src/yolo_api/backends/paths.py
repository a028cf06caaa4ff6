"""Local-mode input policy: model and data resolve inside the allowed roots (no ``../../etc/passwd``), and what
can be refused at once is refused at ``POST /train`` (422 naming the field), not minutes later by a trainer.

The checks are cheap on purpose: a file exists, a YAML parses into a mapping, an architecture name is one that
ultralytics ships. Whether a dataset trains (splits, labels, images) stays the trainer's question, answered by
ultralytics' own code (``yolo_trainer.checks``). ``s3://`` URIs and ``task/<id>`` references are not paths:
object storage is read by the trainer, an earlier training is checked by :mod:`yolo_api.sources`.
"""

import functools
import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from yolo_api.errors import invalid
from yolo_crd.locations import cache_dir, is_s3, source_ref
from yolo_crd.spec import YoloTrainingSpec

DOWNLOADS_OFF = ("pretrained weights are not downloaded: set YOLO_TRAINER_ALLOW_DOWNLOADS=true in the API's "
                 "environment to let its trainers fetch them, or give the path of a .pt file")


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


#: A dataset or model YAML is a few kilobytes; a bigger file is read no further in a request.
YAML_LIMIT = 10_000_000

def _error(field: str, kind: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", field], "type": kind, "msg": msg}


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
    return value, _error(field, "path_not_allowed",
                         f"{field} must be a path inside the allowed roots (YOLO_API_ALLOWED_ROOTS: {allowed})")


def confine_spec_paths(spec: dict[str, Any], roots: list[Path], *, allow_downloads: bool) -> dict[str, Any]:
    """Return the spec with absolute model and data paths, or raise a 422 listing each bad input.

    A bare ``.pt`` name stays bare unless such a file exists here: the trainer downloads it when
    ``allow_downloads`` (``YOLO_TRAINER_ALLOW_DOWNLOADS``, which the trainers inherit); without it the name
    is refused here with the same hint the trainer would give. A bare ``.yaml`` name stays bare when
    ultralytics ships such an architecture.
    """
    builtin = str(spec["model"]).endswith((".yaml", ".yml", ".pt"))
    remote_model = is_s3(spec["model"]) or source_ref(spec["model"]) is not None  # object storage, a training
    model, model_error = (spec["model"], None) if remote_model else confine("model", spec["model"], roots,
                                                                           builtin_ok=builtin)
    data, data_error = (spec["data"], None) if is_s3(spec["data"]) else confine("data", spec["data"], roots)
    if model_error is None and not remote_model:
        model_error = model_problem(model, allow_downloads=allow_downloads)
    if data_error is None and not is_s3(data):
        data_error = data_problem(data)
    errors = [error for error in (model_error, data_error) if error]
    if errors:
        raise invalid(errors)
    return {**spec, "model": model, "data": data}


def data_problem(data: str) -> dict[str, Any] | None:
    """Why the dataset YAML at ``data`` (an absolute path) cannot be trained on, or None when it may be."""
    return _yaml_problem("data", Path(data), "dataset file")


def model_problem(model: str, *, allow_downloads: bool) -> dict[str, Any] | None:
    """Why ``model`` (an absolute path, or a bare name left for ultralytics) cannot be loaded, or None."""
    path = Path(model)
    if path.is_absolute():
        if path.suffix.lower() == ".pt":
            return None if path.is_file() else _error("model", "model_not_found", f"model file {path} does not exist")
        return _yaml_problem("model", path, "model file")
    if path.suffix.lower() == ".pt":
        return None if allow_downloads else _error("model", "downloads_off", f"{model}: {DOWNLOADS_OFF}")
    known = ultralytics_architectures()
    if known is None or architecture_known(model, known):  # without ultralytics here, the trainer decides
        return None
    return _error("model", "model_not_found",
                  f"{model} is neither a file nor an architecture ultralytics ships (e.g. yolov8n.yaml, "
                  "yolo11s.yaml); give the path of a model YAML or .pt file")


def _yaml_problem(field: str, path: Path, what: str) -> dict[str, Any] | None:
    if not path.is_file():
        return _error(field, "not_found", f"{what} {path} does not exist")
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            text = handle.read(YAML_LIMIT + 1)
    except OSError as exc:
        return _error(field, "not_readable", f"{what} {path} cannot be read: {exc.strerror or exc}")
    if len(text) > YAML_LIMIT:
        return _error(field, "too_large",
                      f"{what} {path} is larger than {YAML_LIMIT // 1_000_000} MB: not a dataset or model YAML")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return _error(field, "invalid_yaml", f"{what} {path} is not valid YAML: {yaml_problem(exc)}")
    if not isinstance(loaded, dict):
        return _error(field, "invalid_yaml", f"{what} {path} is not a YAML mapping (keys such as train, val, names)"
                      if field == "data" else f"{what} {path} is not a YAML mapping")
    return None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (``line 3, column 9: expected ',' or ']'``)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


@functools.cache
def ultralytics_architectures() -> frozenset[str] | None:
    """The model YAML names ultralytics ships (``yolov8.yaml``, ...), found without importing it (torch is
    heavy); None when ultralytics is not installed beside the API."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"
    return frozenset(path.name for path in models.rglob("*.y*ml"))


def architecture_known(name: str, known: frozenset[str]) -> bool:
    """Whether ultralytics' ``yaml_model_load`` finds ``name``: itself, or its scale-less file (``yolov8n.yaml``
    is ``yolov8.yaml`` at scale n; ``yolov8n6.yaml`` is ``yolov8-p6.yaml``), as that function names them, after
    its file check's renaming of the YOLOv3/v5 ``u`` models (``yolov5nu.yaml`` is ``yolov5n.yaml``)."""
    path = Path(name)
    stem = re.sub(r"(\d+)([nslmx])6(.+)?$", r"\1\2-p6\3", path.stem)
    candidates = {name, stem + path.suffix}
    candidates |= {c.replace("u.yaml", ".yaml") for c in list(candidates) if "yolov3" in c or "yolov5" in c}
    candidates |= {re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", candidate) for candidate in list(candidates)}
    return bool(candidates & known)


#: Spec fields only a cluster acts on: refused locally rather than silently ignored.
CLUSTER_ONLY = ("suspend", "image", "resources", "node_selector", "tolerations", "affinity", "priority_class_name",
                "queue_name", "active_deadline_seconds", "backoff_limit")


def refuse_cluster_fields(spec: YoloTrainingSpec) -> None:
    """422 for what a local training cannot honour: PVCs, a Kubernetes Secret, or how a cluster runs the pod
    (suspend would train at once, a deadline would end nothing), each field named, before anything starts."""
    errors = []
    if spec.storage is not None:
        errors.append(_error("storage", "not_supported", "storage mounts PersistentVolumeClaims: only the kubernetes "
                             "backend has them; locally, name paths under the allowed roots instead"))
    if spec.object_storage is not None:
        errors.append(_error("object_storage", "not_supported", "object_storage names a Kubernetes Secret; locally, "
                             "trainers use the API's own AWS_* environment variables"))
    why = "is about how a cluster runs the trainer's pod; the local backend runs trainers as processes on this " \
          "machine and would ignore it"
    errors += [_error(name, "not_supported", f"{name} {why}") for name in CLUSTER_ONLY
               if getattr(spec, name) not in (None, False)]
    if errors:
        raise invalid(errors)


def recorded_file(uri: Path, data: object, runs_dir: Path, task_id: str) -> Path | None:
    """The local file of an artifact a task recorded, if it lies where the task's files may: its run directory,
    its own dataset YAML (confined to the allowed roots at submit), or the data.yaml of its ``s3://`` dataset,
    fetched into the runs' shared cache. None otherwise, or when there is no such file."""
    path = uri.resolve()
    own_data = isinstance(data, str) and not is_s3(data) and path == Path(data).resolve()
    fetched = isinstance(data, str) and is_s3(data) and path.name == "data.yaml" \
        and path.is_relative_to(cache_dir(runs_dir, "datasets", data).resolve())
    inside_run = path.is_relative_to((runs_dir / task_id).resolve())
    return path if (inside_run or own_data or fetched) and path.is_file() else None
