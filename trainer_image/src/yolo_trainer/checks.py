"""Preflight checks of the model and the dataset, so bad input fails in seconds with a clear message.

The dataset is judged by ultralytics' own code, never by a copy of its rules: ``check_det_dataset`` reads
and resolves the YAML (``path``, ``train``/``val`` as folders, lists or text files, ``validation``, ``nc``
without ``names``, ...) and ``YOLODataset`` lists and verifies every image and label exactly as training
will (and leaves its label cache behind for training to reuse). What this module adds:

* a relative ``path:`` is taken relative to the YAML file (ultralytics would use the trainer's working
  directory, which is the API's or the pod's, never the user's): a resolved copy of the YAML is used;
* what ultralytics would fail on later (bad YAML, ``names`` ids that are not 0..n-1, a split with no
  usable image) fails now with reason ``DatasetInvalid`` and a one-line message;
* a label file that ultralytics would drop together with its image (wrong columns, class out of range,
  coordinates not normalised) fails too, naming the file and line: training without it would silently
  lose labelled data;
* images that cannot be decoded (corrupt or truncated) are skipped, as ultralytics does, but counted:
  :class:`DatasetReport` says how many and why, and the trainer reports it in ``status.datasetSkipped``.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from yolo_trainer.errors import TrainingFailure, dataset_invalid, model_not_found

MAX_REPORTED: Final = 5
DOWNLOADS_OFF_HINT: Final = ("pretrained weights are not downloaded: set YOLO_TRAINER_ALLOW_DOWNLOADS=true to let "
                             "ultralytics fetch them, or give the path of a .pt file")


def check_model(model: str, *, allow_downloads: bool) -> None:
    """Fail with ModelNotFound unless the weights file exists or the architecture YAML resolves."""
    path = Path(model)
    if path.suffix == ".pt":
        if path.is_file():
            return
        if path.name == model:  # a bare name such as yolov8n.pt: ultralytics' pretrained weights
            if allow_downloads:
                return
            raise model_not_found(f"{model} ({DOWNLOADS_OFF_HINT})")
        raise model_not_found(str(path.absolute()))
    if path.is_file():
        return
    from ultralytics.nn.tasks import yaml_model_load  # heavy import, only when a built-in name is used

    try:
        yaml_model_load(model)
    except (FileNotFoundError, OSError) as exc:
        raise model_not_found(model) from exc


@dataclass(frozen=True)
class DatasetReport:
    """The dataset YAML to train with, and what ultralytics will skip in it."""

    data: Path
    skipped_images: int = 0
    skipped_labels: int = 0
    reasons: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, Any] | None:
        """``status.datasetSkipped``, or None when nothing is skipped."""
        if not self.skipped_images and not self.skipped_labels:
            return None
        return {"images": self.skipped_images, "labels": self.skipped_labels, "reasons": self.reasons}


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.replace("❌", "").splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Note dataset download", "See https://"))]
    return " ".join(kept) or type(exc).__name__


def _load_yaml(data: Path) -> dict[str, Any]:
    if not data.is_file():
        raise dataset_invalid(f"dataset file {data} does not exist")
    try:
        loaded = yaml.safe_load(data.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise dataset_invalid(f"dataset file {data} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(loaded, dict):
        raise dataset_invalid(f"dataset file {data} must be a YAML mapping with train, val and names")
    return loaded


def _resolved_yaml(data: Path, config: dict[str, Any], work_dir: Path) -> Path:
    """``data`` itself, or a copy whose relative ``path`` is made absolute against the YAML's folder."""
    root = config.get("path")
    if not isinstance(root, str) or not root or Path(root).is_absolute():
        return data
    beside = (data.parent / root).resolve()
    if not beside.is_dir():
        return data  # ultralytics' own rules then apply (its datasets directory)
    work_dir.mkdir(parents=True, exist_ok=True)
    copy = work_dir / "dataset.yaml"
    copy.write_text(yaml.safe_dump({**config, "path": str(beside)}, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return copy


def _bad_line(label: Path, classes: int) -> str:
    """Where a label file that ultralytics refuses goes wrong (only to point at it: ultralytics judged)."""
    try:
        lines = label.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError:
        return str(label)
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, *coords = (float(value) for value in fields)
        except ValueError:
            return f"{label} line {number} ({line.strip()!r} is not 'class x y w h' numbers)"
        if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
            return f"{label} line {number} (expected 'class x y w h' or a polygon, got {len(fields)} values)"
        if not cls.is_integer() or not 0 <= cls < classes:
            return f"{label} line {number} (class {fields[0]} is out of range for {classes} classes: 0..{classes - 1})"
        if any(value > 1.01 or value < -0.01 for value in coords):
            return f"{label} line {number} (coordinates must be normalised to 0..1)"
    return str(label)


def _check_split(split: str, config: dict[str, Any], hyperparameters: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Verify one split as training will; return each skipped image with why, and whether it has a label file."""
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_image, img2label_paths, verify_image_label

    source = config[split]
    try:
        dataset = YOLODataset(img_path=source, data=config, task="detect", augment=False, prefix=f"{split}: ",
                              single_cls=bool(hyperparameters.get("single_cls", False)),
                              fraction=float(hyperparameters.get("fraction", 1.0)) if split == "train" else 1.0)
    except (FileNotFoundError, RuntimeError, ValueError, AssertionError) as exc:
        cause = _one_line(exc.__cause__ or exc)
        raise dataset_invalid(f"no usable {split} images in {source}: {cause}") from exc
    if split == "train" and not any(os.path.isfile(label) for label in dataset.label_files):
        raise dataset_invalid(f"no label files for the train images in {source}: expected YOLO .txt labels such as "
                              f"{dataset.label_files[0]}")
    kept = {label["im_file"] for label in dataset.labels}
    dropped = [image for image in dataset.get_img_files(source) if image not in kept]
    skipped: dict[str, tuple[str, bool]] = {}
    bad_labels: list[str] = []
    classes = len(config["names"])
    for image in dropped:
        label = img2label_paths([image])[0]
        try:
            check_image(image)
        except Exception as exc:  # the image itself cannot be decoded: ultralytics skips it
            skipped[image] = (f"{image}: {_one_line(exc)}", os.path.isfile(label))
            continue
        *_, message = verify_image_label((image, label, "", False, classes, 0, 0, dataset.single_cls))
        why = message.rpartition("ignoring corrupt image/label: ")[2] or "refused"
        bad_labels.append(f"{_bad_line(Path(label), classes)}: {why}")
    if bad_labels:
        more = f" (and {len(bad_labels) - MAX_REPORTED} more)" if len(bad_labels) > MAX_REPORTED else ""
        raise dataset_invalid(f"{split} labels that training would drop with their images: "
                              + "; ".join(bad_labels[:MAX_REPORTED]) + more)
    return skipped


def check_dataset(data: str, work_dir: Path, hyperparameters: dict[str, Any] | None = None) -> DatasetReport:
    """Fail with DatasetInvalid unless ultralytics can train on the dataset without silently losing labels.

    ``work_dir`` receives a resolved copy of the YAML when its ``path`` is relative. Returns the YAML to
    train with and what will be skipped.
    """
    path = Path(data).absolute()
    config = _load_yaml(path)
    resolved = _resolved_yaml(path, config, work_dir)
    from ultralytics.data.utils import check_det_dataset

    try:
        checked = check_det_dataset(str(resolved), autodownload=False)
    except Exception as exc:  # ultralytics says why in its own words (SyntaxError, KeyError, FileNotFoundError...)
        raise dataset_invalid(f"dataset file {path}: {_one_line(exc)}") from exc
    if not checked.get("train"):
        raise dataset_invalid(f"dataset file {path} has no 'train' entry")
    skipped: dict[str, tuple[str, bool]] = {}
    for split in ("train", "val"):  # the same image in both splits is skipped once
        skipped.update(_check_split(split, checked, hyperparameters or {}))
    reasons = [why for why, _ in skipped.values()]
    labels = sum(has_label for _, has_label in skipped.values())
    return DatasetReport(resolved, len(reasons), labels, reasons[:MAX_REPORTED])


__all__ = ["DatasetReport", "TrainingFailure", "check_dataset", "check_model"]
