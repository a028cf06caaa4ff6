"""The trainer's delivery with real ultralytics: a training exported to ONNX and TorchScript and each export
validated, a quality gate it misses, the plots people look at, and retries of that finished run that fail an
export (a forced mismatch, an export that raises) with everything made so far still listed. One training
(1 epoch, imgsz 64) serves all of it: the retries only re-validate best.pt and export again."""

from pathlib import Path
from typing import Any

import pytest

from fakes import RecordingSink
from plotting import plots_drawn  # noqa: F401 - this module's trainings draw plots
from yolo_crd.outcome import verdict
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, TrainingStatus
from yolo_trainer import export
from yolo_trainer.runner import run
from yolo_trainer.settings import TrainerSettings

# Warnings pytest would make errors here: torch 2.14 deprecates torch.jit (trace, load...), which TorchScript
# export and validation use; the tracer's warnings, which ultralytics silences when it is first imported (in an
# earlier test of the session, whose warning filters pytest has since restored)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]
PNG, JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
PLOTS = ["results.png", "BoxPR_curve.png", "BoxF1_curve.png", "BoxP_curve.png", "BoxR_curve.png",
         "confusion_matrix.png", "confusion_matrix_normalized.png", "labels.jpg", "train_batch0.jpg",
         "val_batch0_labels.jpg", "val_batch0_pred.jpg"]


def make_spec(data: Path, **fields: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec(model="yolov8n.yaml", data=str(data), epochs=1, imgsz=64, batch=16, gpus=0,
                            hyperparameters={"workers": 0, "seed": 0}, **fields)


def settings(tmp_path: Path, **extra: Any) -> TrainerSettings:
    return TrainerSettings(task_id="export-1", output_dir=tmp_path / "runs", report_interval=0.0,
                           final_report_timeout=30.0, **extra)


@pytest.fixture
def requirements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, bool]]:
    """Every requirement ultralytics checks while exporting and validating, with whether it was installed."""
    from ultralytics.engine import exporter
    from ultralytics.nn.backends import onnx

    seen: list[tuple[Any, bool]] = []
    for module in (exporter, onnx):
        def checked(requirements: Any, *args: Any, _real: Any = module.check_requirements, **kwargs: Any) -> bool:
            found = bool(_real(requirements, *args, **{**kwargs, "install": False}))
            seen.append((requirements, found))
            return found

        monkeypatch.setattr(module, "check_requirements", checked)
    return seen


def test_exports_are_verified_and_a_missed_gate_keeps_everything(
        dataset3: Path, tmp_path: Path, requirements: list[tuple[Any, bool]], monkeypatch: pytest.MonkeyPatch) -> None:
    sink = RecordingSink()
    spec = make_spec(dataset3, export=["onnx", "torchscript"], success_criteria={"mAP50": 0.99})
    assert run(settings(tmp_path), spec, sink) == 0  # training worked: the verdict, not the exit code, fails it

    state = sink.state()
    status = TrainingStatus.model_validate(state)
    assert state["stage"] == "completed" and state["progress"] == 100.0 and "finalMetrics" in state
    assert state["qualityGate"]["passed"] is False and "mAP50" in state["qualityGate"]["message"]
    final = next(p for p in sink.patches if p.get("stage") == "completed")
    assert {"finalMetrics", "qualityGate", "exports", "artifacts"} <= set(final)  # one patch, one decision
    found = verdict(status, None)
    assert found is not None and (found.phase, found.reason) == (Phase.FAILED, "QualityGateNotMet")
    assert all(found for _, found in requirements) and requirements  # nothing ultralytics would install

    progress = [p["progress"] for p in sink.patches if "progress" in p]
    assert progress == sorted(progress) and progress.count(100.0) == 1 and progress[-1] == 100.0
    steps = [(p["exportProgress"]["format"], p["exportProgress"]["step"]) for p in sink.patches
             if p.get("exportProgress")]
    assert steps == [("onnx", "exporting"), ("onnx", "validating"), ("torchscript", "exporting"),
                     ("torchscript", "validating")]
    assert all(90.0 <= p["progress"] < 100.0 for p in sink.patches if p.get("stage") == "exporting")

    artifacts = {a["name"]: a for a in state["artifacts"]}
    exports = {e["format"]: e for e in state["exports"]}
    run_dir = tmp_path / "runs" / "export-1"
    for fmt, name in (("onnx", "best.onnx"), ("torchscript", "best.torchscript")):
        record, artifact = exports[fmt], artifacts[name]
        assert artifact["kind"] == "export" and Path(artifact["uri"]) == run_dir / "weights" / name
        assert (record["artifact"], record["uri"], record["sha256"], record["size"]) == (
            name, artifact["uri"], artifact["sha256"], artifact["size"]) and record["size"] > 100_000
        for figure in ("mAP50", "mAP50-95"):
            assert 0.0 <= record[figure] <= 1.0 and 0.0 <= record[f"reference{figure.upper()}"] <= 1.0
            assert record[f"delta{figure.upper()}"] == round(record[figure] - record[f"reference{figure.upper()}"], 4)
            assert abs(record[f"delta{figure.upper()}"]) <= 0.01  # the default tolerance held
        assert record["seconds"] > 0

    for name in PLOTS:
        assert artifacts[name]["kind"] == "plot", name
        body = Path(artifacts[name]["uri"]).read_bytes()
        assert body.startswith(PNG if name.endswith(".png") else JPEG) and len(body) > 1000, name
    assert {artifacts[n]["kind"] for n in ("best.pt", "last.pt", "results.csv", "args.yaml", "data.yaml")} == {
        "weights", "metrics", "config"}
    from ultralytics.utils.checks import check_font

    assert check_font("Arial.ttf") and check_font("Arial.Unicode.ttf")  # the plots' fonts, found without a download

    # a retry of the finished run with an export forced off its reference: ExportMismatch, nothing retried (2),
    # after both exports were stored and recorded, once each
    validate = export.Exporter.validate

    def shifted(self: export.Exporter, weights: Path) -> tuple[float | None, float | None]:
        map50, map50_95 = validate(self, weights)
        return (map50, (map50_95 or 0.0) + 0.25) if weights.suffix == ".onnx" else (map50, map50_95)

    monkeypatch.setattr(export.Exporter, "validate", shifted)
    retry = RecordingSink()
    # (the retries draw no plots of their own, to save time: the first run's are still in the run directory)
    assert run(settings(tmp_path, plots=False), spec.model_copy(update={"export_tolerance": 0.0}), retry) == 2
    state = retry.state()
    assert state["stage"] == "failed" and state["trainingFailure"]["reason"] == "ExportMismatch"
    assert state["trainingFailure"]["message"].startswith("onnx export: mAP50-95 ")
    assert "tolerance 0 (spec.exportTolerance)" in state["trainingFailure"]["message"]
    names = [a["name"] for a in state["artifacts"]]
    assert len(names) == len(set(names)) and {"best.pt", "best.onnx", "best.torchscript", *PLOTS} <= set(names)
    assert [e["format"] for e in state["exports"]] == ["onnx", "torchscript"]
    assert state["exports"][0]["deltaMAP50-95"] == 0.25


    # and a retry whose ONNX export raises: ExportFailed with torch's message on one line (a retry may help: 1),
    # the TorchScript export made before it listed
    monkeypatch.setattr(export.Exporter, "validate", validate)

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported.\nSee ...")

    import torch

    monkeypatch.setattr(torch.onnx, "export", refuse)
    again = RecordingSink()
    assert run(settings(tmp_path, plots=False), make_spec(dataset3, export=["torchscript", "onnx"]), again) == 1
    state = again.state()
    assert state["stage"] == "failed" and state["trainingFailure"] == {
        "reason": "ExportFailed", "message": "onnx export failed: Exporting the operator 'aten::foo' to ONNX opset "
                                             "version 17 is not supported. See ..."}
    assert [e["format"] for e in state["exports"]] == ["torchscript"]
    assert {"best.pt", "best.torchscript", "confusion_matrix.png"} <= {a["name"] for a in state["artifacts"]}
    assert 90.0 <= state["progress"] < 100.0
