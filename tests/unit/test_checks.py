"""Preflight checks: bad models and datasets fail in seconds with the offending path in the message."""

from pathlib import Path

import pytest

from yolo_crd.status import Reason
from yolo_trainer.checks import check_dataset, check_model
from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure


def write_dataset(root: Path, labels: dict[str, str] | None = None, names: str = "names: [a, b]") -> Path:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for index in range(2):
            (root / "images" / split / f"{index}.png").write_bytes(b"\x89PNG")
            text = (labels or {}).get(f"{split}/{index}", "0 0.5 0.5 0.2 0.2\n")
            (root / "labels" / split / f"{index}.txt").write_text(text)
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\n{names}\n")
    return data


def failure(call: object, *args: object, **kwargs: object) -> TrainingFailure:
    with pytest.raises(TrainingFailure) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert "Traceback" not in caught.value.message
    return caught.value


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "weights" / "nope.pt"
    error = failure(check_model, str(missing), allow_downloads=False)
    assert error.reason is Reason.MODEL_NOT_FOUND and str(missing) in error.message and "模型文件不存在" in error.message
    assert error.exit_code == EXIT_INVALID_INPUT


def test_bare_weights_name_is_only_fetched_when_downloads_are_allowed() -> None:
    assert failure(check_model, "yolov8n.pt", allow_downloads=False).reason is Reason.MODEL_NOT_FOUND
    check_model("yolov8n.pt", allow_downloads=True)


def test_architectures_resolve_from_files_or_ultralytics(tmp_path: Path) -> None:
    check_model("yolov8n.yaml", allow_downloads=False)
    custom = tmp_path / "custom.yaml"
    custom.write_text("nc: 2\n")
    check_model(str(custom), allow_downloads=False)
    assert failure(check_model, str(tmp_path / "missing.yaml"), allow_downloads=False).reason is Reason.MODEL_NOT_FOUND


def test_a_valid_dataset_passes(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    assert check_dataset(str(data)) == data


def test_a_missing_dataset_names_the_path(tmp_path: Path) -> None:
    error = failure(check_dataset, str(tmp_path / "none" / "data.yaml"))
    assert error.reason is Reason.DATASET_INVALID and str(tmp_path / "none" / "data.yaml") in error.message


@pytest.mark.parametrize(("content", "fragment"), [
    ("train: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("train: images/train\nval: images/val\n", "class names"),
    ("train: images/train\nnames: [a]\n", "no 'val' entry"),
    ("train: images/train\nval: images/val\nnc: 3\nnames: [a, b]\n", "nc is 3"),
])
def test_malformed_dataset_yaml(tmp_path: Path, content: str, fragment: str) -> None:
    write_dataset(tmp_path)
    (tmp_path / "data.yaml").write_text(content)
    assert fragment in failure(check_dataset, str(tmp_path / "data.yaml")).message


@pytest.mark.parametrize(("label", "fragment"), [
    ("0 0.5 0.5 0.2\n", "got 4 values"),
    ("zero 0.5 0.5 0.2 0.2\n", "is not 'class x y w h' numbers"),
    ("5 0.5 0.5 0.2 0.2\n", "class 5 is out of range for 2 classes"),
    ("0.5 0.5 0.5 0.2 0.2\n", "out of range"),
    ("1 1.5 0.5 0.2 0.2\n", "normalised"),
])
def test_bad_label_lines_name_file_and_line(tmp_path: Path, label: str, fragment: str) -> None:
    data = write_dataset(tmp_path, labels={"val/1": "0 0.5 0.5 0.1 0.1\n" + label})
    error = failure(check_dataset, str(data))
    assert error.reason is Reason.DATASET_INVALID
    assert fragment in error.message and f"{tmp_path / 'labels' / 'val' / '1.txt'} line 2" in error.message


def test_polygon_labels_are_accepted(tmp_path: Path) -> None:
    check_dataset(str(write_dataset(tmp_path, labels={"train/0": "1 0.1 0.1 0.5 0.1 0.3 0.4\n"})))


def test_missing_and_empty_image_sources(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    (tmp_path / "list.txt").write_text("images/train/0.png\nimages/train/404.png\n")
    data.write_text(f"path: {tmp_path}\ntrain: list.txt\nval: images/val\nnames: [a, b]\n")
    assert "images are missing" in failure(check_dataset, str(data)).message
    for image in (tmp_path / "images" / "val").iterdir():
        image.unlink()
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: [a, b]\n")
    assert "no val images found" in failure(check_dataset, str(data)).message
    data.write_text(f"path: {tmp_path}\ntrain: images/nowhere\nval: images/val\nnames: [a, b]\n")
    assert "do not exist" in failure(check_dataset, str(data)).message
