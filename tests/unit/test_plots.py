"""Plots as artifacts: which of ultralytics' pictures are kept (a fixed, bounded selection), the kind of every
artifact, the whole list within the status's bound, and fonts that resolve without a download."""

from pathlib import Path

import pytest

from yolo_crd.delivery import EXPORT_FORMATS
from yolo_crd.status import ARTIFACTS_LIMIT, Artifact
from yolo_trainer import plots
from yolo_trainer.artifacts import local_artifacts
from yolo_trainer.plots import FONTS, PLOT_NAMES, PLOTS_LIMIT, kind_of, provide_fonts, select_plots

ULTRALYTICS_84 = ["results.png", "BoxPR_curve.png", "BoxF1_curve.png", "BoxP_curve.png", "BoxR_curve.png",
                  "confusion_matrix.png", "confusion_matrix_normalized.png", "labels.jpg", "train_batch0.jpg",
                  "train_batch1.jpg", "train_batch2.jpg", "val_batch0_labels.jpg", "val_batch0_pred.jpg"]


def touch(folder: Path, *names: str, body: bytes = b"\x89PNG") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(body)


def test_a_run_keeps_its_plots_most_telling_first(tmp_path: Path) -> None:
    touch(tmp_path, *ULTRALYTICS_84, "results.csv", "args.yaml", "notes.png")
    kept = list(select_plots(tmp_path))
    assert kept == ["results.png", "confusion_matrix.png", "confusion_matrix_normalized.png", "BoxPR_curve.png",
                    "BoxF1_curve.png", "BoxP_curve.png", "BoxR_curve.png", "val_batch0_pred.jpg",
                    "val_batch0_labels.jpg", "labels.jpg", "train_batch0.jpg", "train_batch1.jpg", "train_batch2.jpg"]


def test_the_final_validation_of_best_pt_wins_and_empty_files_are_skipped(tmp_path: Path) -> None:
    touch(tmp_path, "confusion_matrix.png", "BoxPR_curve.png")
    touch(tmp_path / "final-val", "confusion_matrix.png")
    touch(tmp_path / "final-val", "BoxPR_curve.png", body=b"")
    kept = select_plots(tmp_path)
    assert kept["confusion_matrix.png"] == tmp_path / "final-val" / "confusion_matrix.png"
    assert kept["BoxPR_curve.png"] == tmp_path / "BoxPR_curve.png"


def test_training_batches_are_the_first_three_and_the_last_three(tmp_path: Path) -> None:
    touch(tmp_path, *(f"train_batch{n}.jpg" for n in (0, 1, 2, 280, 281, 282, 1000)), "train_batch_x.jpg")
    assert list(select_plots(tmp_path)) == ["train_batch0.jpg", "train_batch1.jpg", "train_batch2.jpg",
                                            "train_batch281.jpg", "train_batch282.jpg", "train_batch1000.jpg"]


def test_every_plot_and_export_fits_in_the_status_bound(tmp_path: Path) -> None:
    touch(tmp_path, *PLOT_NAMES, *(f"train_batch{n}.jpg" for n in range(40)))
    touch(tmp_path / "weights", "best.pt", "last.pt")
    touch(tmp_path, "results.csv", "args.yaml", "data.yaml")
    assert len(select_plots(tmp_path)) == PLOTS_LIMIT
    listed = local_artifacts(tmp_path, tmp_path / "data.yaml")
    assert len(listed) + len(EXPORT_FORMATS) <= ARTIFACTS_LIMIT
    assert len(listed) == 5 + PLOTS_LIMIT and all(Artifact.model_validate(a).kind for a in listed)


@pytest.mark.parametrize(("name", "kind"), [
    ("best.pt", "weights"), ("last.pt", "weights"), ("results.csv", "metrics"), ("args.yaml", "config"),
    ("data.yaml", "config"), ("BoxPR_curve.png", "plot"), ("val_batch0_pred.jpg", "plot"),
    ("best.onnx", "export"), ("best.torchscript", "export"), ("readme.txt", None)])
def test_artifact_kinds(name: str, kind: str | None) -> None:
    assert kind_of(name) == kind


def test_fonts_are_matplotlibs_dejavu_under_ultralytics_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    config = tmp_path / ".ultralytics"
    monkeypatch.setattr(plots, "_known_to_matplotlib", lambda name: True)  # the trainer image's system fonts
    provide_fonts(config)
    assert not config.exists()
    monkeypatch.setattr(plots, "_known_to_matplotlib", lambda name: False)
    provide_fonts(config)
    dejavu = (Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf").read_bytes()
    assert all((config / name).read_bytes() == dejavu for name in FONTS)
    (config / "Arial.ttf").write_bytes(b"a font of the user's")
    provide_fonts(config)  # a font already there stays
    assert (config / "Arial.ttf").read_bytes() == b"a font of the user's"
    assert not list(config.glob(".*.part"))


def test_plots_are_on_unless_the_trainers_settings_turn_them_off(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from yolo_crd.spec import YoloTrainingSpec
    from yolo_trainer.settings import TrainerSettings
    from yolo_trainer.training import train_arguments

    spec = YoloTrainingSpec(model="yolov8n.yaml", data=str(tmp_path / "data.yaml"))
    monkeypatch.delenv("YOLO_TRAINER_PLOTS", raising=False)  # the test session turns them off (tests/conftest.py)
    assert TrainerSettings().plots is True
    assert train_arguments(spec, tmp_path / "data.yaml", tmp_path / "run")["plots"] is True
    monkeypatch.setenv("YOLO_TRAINER_PLOTS", "false")
    assert TrainerSettings().plots is False
    assert train_arguments(spec, tmp_path / "data.yaml", tmp_path / "run", plots=False)["plots"] is False
