"""Preflight checks: datasets as people export them pass; what training would fail on or silently drop is
refused in seconds with the offending file in the message; undecodable images are counted, not hidden."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_crd.status import Reason
from yolo_trainer.checks import DOWNLOADS_OFF_HINT, check_dataset, check_model
from yolo_trainer.errors import EXIT_INVALID_INPUT, TrainingFailure

LABEL = "0 0.5 0.5 0.2 0.2\n"


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 16, 3), 200, np.uint8))


def label(path: Path, text: str = LABEL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_dataset(root: Path, labels: dict[str, str] | None = None, names: str = "names: [a, b]") -> Path:
    for split in ("train", "val"):
        for index in range(2):
            image(root / "images" / split / f"{index}.png")
            label(root / "labels" / split / f"{index}.txt", (labels or {}).get(f"{split}/{index}", LABEL))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\n{names}\n")
    return data


def failure(call: object, *args: object, **kwargs: object) -> TrainingFailure:
    with pytest.raises(TrainingFailure) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert "Traceback" not in caught.value.message and "\n" not in caught.value.message
    return caught.value


def test_missing_weights_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "weights" / "nope.pt"
    error = failure(check_model, str(missing), allow_downloads=False)
    assert error.reason is Reason.MODEL_NOT_FOUND and str(missing) in error.message and "模型文件不存在" in error.message
    assert error.exit_code == EXIT_INVALID_INPUT


def test_bare_weights_name_is_only_fetched_when_downloads_are_allowed() -> None:
    error = failure(check_model, "yolov8n.pt", allow_downloads=False)
    assert error.reason is Reason.MODEL_NOT_FOUND and DOWNLOADS_OFF_HINT in error.message
    assert "YOLO_TRAINER_ALLOW_DOWNLOADS=true" in error.message
    check_model("yolov8n.pt", allow_downloads=True)


def test_architectures_resolve_from_files_or_ultralytics(tmp_path: Path) -> None:
    check_model("yolov8n.yaml", allow_downloads=False)
    custom = tmp_path / "custom.yaml"
    custom.write_text("nc: 2\n")
    check_model(str(custom), allow_downloads=False)
    assert failure(check_model, str(tmp_path / "missing.yaml"), allow_downloads=False).reason is Reason.MODEL_NOT_FOUND


def test_a_valid_dataset_passes_as_it_is(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d")
    report = check_dataset(str(data), tmp_path / "run")
    assert report.data == data and report.wire() is None


def test_path_dot_is_relative_to_the_yaml_not_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    data = write_dataset(tmp_path / "d")
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a, b]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report = check_dataset(str(data), tmp_path / "run")
    assert report.data == tmp_path / "run" / "dataset.yaml"  # a resolved copy for ultralytics
    assert f"path: {tmp_path / 'd'}" in report.data.read_text()


def test_a_roboflow_export_without_path_passes(tmp_path: Path) -> None:
    # data.yaml at the root, splits as ../train/images: ultralytics drops the ../ when it leads nowhere
    root = tmp_path / "export"
    for split in ("train", "valid"):
        for index in range(2):
            image(root / split / "images" / f"{index}.jpg")
            label(root / split / "labels" / f"{index}.txt")
    data = root / "data.yaml"
    data.write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['a', 'b']\n")
    assert check_dataset(str(data), tmp_path / "run").data == data


def test_list_files_validation_key_and_labels_beside_images(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for index in range(3):  # no images/ folder: ultralytics looks for the .txt next to each image
        image(root / "pics" / f"{index}.png")
        label(root / "pics" / f"{index}.txt")
    (root / "train.txt").write_text("./pics/0.png\n./pics/1.png\n", encoding="utf-8-sig")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: train.txt\nvalidation: [pics]\nnc: 2\n")
    check_dataset(str(data), tmp_path / "run")


def test_a_label_file_with_a_byte_order_mark_passes(tmp_path: Path) -> None:
    data = write_dataset(tmp_path, labels={"train/0": "\ufeff0 0.5 0.5 0.2 0.2\n"})
    assert check_dataset(str(data), tmp_path / "run").wire() is None


def test_names_with_gaps_in_their_ids_are_refused(tmp_path: Path) -> None:
    data = write_dataset(tmp_path, names="names: {0: a, 2: c}")
    error = failure(check_dataset, str(data), tmp_path / "run")
    assert error.reason is Reason.DATASET_INVALID and str(data) in error.message and "class indices 0-1" in error.message


def test_undecodable_images_are_skipped_and_counted(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    truncated = tmp_path / "images" / "train" / "1.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    (tmp_path / "images" / "val" / "2.jpg").write_bytes(b"not an image at all")
    report = check_dataset(str(data), tmp_path / "run")
    assert (report.skipped_images, report.skipped_labels) == (2, 1)  # val/2.jpg has no label file
    assert any(str(truncated) in reason for reason in report.reasons)
    assert report.wire() == {"images": 2, "labels": 1, "reasons": report.reasons}


def test_a_split_with_no_decodable_image_is_refused(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    for path in (tmp_path / "images" / "val").iterdir():
        path.write_bytes(b"junk")
    assert "no usable val images" in failure(check_dataset, str(data), tmp_path / "run").message


def test_a_dataset_without_any_train_label_is_refused(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    for path in (tmp_path / "labels" / "train").iterdir():
        path.unlink()
    message = failure(check_dataset, str(data), tmp_path / "run").message
    assert "no label files for the train images" in message and str(tmp_path / "labels" / "train") in message


def test_a_missing_dataset_names_the_path(tmp_path: Path) -> None:
    error = failure(check_dataset, str(tmp_path / "none" / "data.yaml"), tmp_path / "run")
    assert error.reason is Reason.DATASET_INVALID and str(tmp_path / "none" / "data.yaml") in error.message


@pytest.mark.parametrize(("content", "fragment"), [
    ("train: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("train: images/train\nval: images/val\n", "either 'names' or 'nc' are required"),
    ("train: images/train\nnames: [a]\n", "'val:' key missing"),
    ("train: images/train\nval: images/val\nnc: 3\nnames: [a, b]\n", "must match"),
    ("train: images/train\nval: images/nowhere\nnames: [a, b]\n", "images not found"),
    ("train: images/nowhere\nval: images/val\nnames: [a, b]\n", "no usable train images"),
])
def test_malformed_dataset_yaml(tmp_path: Path, content: str, fragment: str) -> None:
    write_dataset(tmp_path)
    (tmp_path / "data.yaml").write_text(content)
    assert fragment in failure(check_dataset, str(tmp_path / "data.yaml"), tmp_path / "run").message


@pytest.mark.parametrize(("text", "fragment"), [
    ("0 0.5 0.5 0.2\n", "got 4 values"),
    ("zero 0.5 0.5 0.2 0.2\n", "is not 'class x y w h' numbers"),
    ("5 0.5 0.5 0.2 0.2\n", "class 5 is out of range for 2 classes"),
    ("0.5 0.5 0.5 0.2 0.2\n", "out of range"),
    ("1 1.5 0.5 0.2 0.2\n", "normalised"),
])
def test_labels_training_would_drop_name_file_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    data = write_dataset(tmp_path, labels={"val/1": "0 0.5 0.5 0.1 0.1\n" + text})
    error = failure(check_dataset, str(data), tmp_path / "run")
    assert error.reason is Reason.DATASET_INVALID and "would drop" in error.message
    assert fragment in error.message and f"{tmp_path / 'labels' / 'val' / '1.txt'} line 2" in error.message


def test_polygon_labels_and_slightly_rounded_coordinates_are_accepted(tmp_path: Path) -> None:
    labels = {"train/0": "1 0.1 0.1 0.5 0.1 0.3 0.4\n", "train/1": "0 0.5 0.5 1.005 0.2\n"}
    check_dataset(str(write_dataset(tmp_path, labels=labels)), tmp_path / "run")
