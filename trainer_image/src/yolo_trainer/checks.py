"""Preflight checks of the model and the dataset, so bad input fails in seconds with a clear message.

Ultralytics would otherwise try to download a missing file, skip corrupt labels with a warning, or fail
deep inside a data loader. These checks name the offending file and line instead.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import yaml

from yolo_trainer.errors import TrainingFailure, dataset_invalid, model_not_found

IMAGE_SUFFIXES: Final = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm"})
MAX_REPORTED: Final = 5


def check_model(model: str, *, allow_downloads: bool) -> None:
    """Fail with ModelNotFound unless the weights file exists or the architecture YAML resolves."""
    path = Path(model)
    if path.suffix == ".pt":
        if path.is_file():
            return
        if allow_downloads and path.name == model:
            return  # a bare name such as yolov8n.pt that ultralytics may download
        raise model_not_found(str(path.absolute()) if path.name != model else model)
    if path.is_file():
        return
    from ultralytics.nn.tasks import yaml_model_load  # heavy import, only when a built-in name is used

    try:
        yaml_model_load(model)
    except (FileNotFoundError, OSError) as exc:
        raise model_not_found(model) from exc


def _load_yaml(data: Path) -> dict[str, Any]:
    if not data.is_file():
        raise dataset_invalid(f"dataset file {data} does not exist")
    try:
        loaded = yaml.safe_load(data.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise dataset_invalid(f"dataset file {data} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(loaded, dict):
        raise dataset_invalid(f"dataset file {data} must be a YAML mapping with train, val and names")
    return loaded


def _class_count(config: dict[str, Any], data: Path) -> int:
    names = config.get("names")
    if isinstance(names, list | dict) and names:
        count = len(names)
    elif isinstance(config.get("nc"), int) and config["nc"] > 0:
        count = int(config["nc"])
    else:
        raise dataset_invalid(f"dataset file {data} must list the class names under 'names'")
    if isinstance(config.get("nc"), int) and config["nc"] != count:
        raise dataset_invalid(f"dataset file {data}: nc is {config['nc']} but 'names' lists {count} classes")
    return count


def _dataset_root(config: dict[str, Any], data: Path) -> Path:
    root = config.get("path")
    if not root:
        return data.parent
    root_path = Path(str(root))
    if root_path.is_absolute():
        return root_path
    return root_path if root_path.exists() else data.parent / root_path


def _images(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    lines = source.read_text(encoding="utf-8").splitlines()
    listed = [Path(line.strip()) for line in lines if line.strip()]
    return [p if p.is_absolute() else source.parent / p for p in listed]


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    if "images" in parts:
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def _label_problems(label: Path, classes: int) -> Iterator[str]:
    for number, line in enumerate(label.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{label} line {number}"
        try:
            cls, *coords = (float(field) for field in fields)
        except ValueError:
            yield f"{where}: {line.strip()!r} is not 'class x y w h' numbers"
            continue
        if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
            yield f"{where}: expected 'class x y w h' (or a polygon), got {len(fields)} values"
        elif not cls.is_integer() or not 0 <= cls < classes:
            yield f"{where}: class {fields[0]} is out of range for {classes} classes (0..{classes - 1})"
        elif any(not 0.0 <= value <= 1.0 for value in coords):
            yield f"{where}: coordinates must be normalised to 0..1"


def _check_split(name: str, entry: Any, root: Path, classes: int) -> None:
    for item in entry if isinstance(entry, list) else [entry]:
        source = Path(str(item))
        source = source if source.is_absolute() else root / source
        if not source.exists():
            raise dataset_invalid(f"{name} images {source} do not exist")
        images = _images(source)
        if not images:
            raise dataset_invalid(f"no {name} images found in {source}")
        missing = [str(image) for image in images if not image.is_file()]
        if missing:
            raise dataset_invalid(f"{len(missing)} {name} images are missing, e.g. {', '.join(missing[:MAX_REPORTED])}")
        problems: list[str] = []
        for image in images:
            label = _label_path(image)
            if label.is_file():
                problems.extend(_label_problems(label, classes))
            if len(problems) >= MAX_REPORTED:
                break
        if problems:
            raise dataset_invalid(f"{name} labels do not parse: " + "; ".join(problems[:MAX_REPORTED]))


def check_dataset(data: str) -> Path:
    """Fail with DatasetInvalid unless the dataset YAML, its image folders and every label line are usable.

    Returns the absolute path of the dataset YAML.
    """
    path = Path(data).absolute()
    config = _load_yaml(path)
    classes = _class_count(config, path)
    root = _dataset_root(config, path)
    for split in ("train", "val"):
        if not config.get(split):
            raise dataset_invalid(f"dataset file {path} has no '{split}' entry")
        try:
            _check_split(split, config[split], root, classes)
        except OSError as exc:
            raise dataset_invalid(f"{split} data under {root} cannot be read: {exc}") from exc
    return path


__all__ = ["TrainingFailure", "check_dataset", "check_model"]
