"""Verified exports and the quality gate, without ultralytics: the records, the fair reference, the mismatch and
failure classification, the progress of the exporting stage, and the gate in the final report's one patch."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from yolo_crd.delivery import ExportResult
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import FinalMetrics, Reason, StopReason, TrainingStatus
from yolo_trainer import export
from yolo_trainer.errors import EXIT_INVALID_INPUT, EXIT_TRAINING_ERROR, TrainingFailure
from yolo_trainer.export import Exporter, check_dependencies, export_record, mismatch
from yolo_trainer.progress import ProgressTracker
from yolo_trainer.reporter import compose
from yolo_trainer.runner import deliver
from yolo_trainer.training import Outcome

SHA = "ab" * 32


def clock() -> str:
    return "2026-01-01T00:00:00Z"


class Reporter:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def update(self, patch: dict[str, Any]) -> None:
        self.patches.append(patch)

    def state(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for patch in self.patches:
            merged = compose(merged, patch)
        return {key: value for key, value in merged.items() if value is not None}


def metrics(map50: float, map50_95: float) -> Any:
    return SimpleNamespace(box=SimpleNamespace(map50=map50, map=map50_95))


class FakeUltralytics:
    """Stands in for ``YOLO(path)``: export writes ``best.<format>``, val answers the figures set per suffix."""

    def __init__(self, figures: dict[str, tuple[float, float]], fail: str | None = None,
                 fail_val: str | None = None) -> None:
        self.figures, self.fail, self.fail_val = figures, fail, fail_val
        self.vals: list[tuple[str, dict[str, Any]]] = []
        self.exports: list[dict[str, Any]] = []

    def __call__(self, path: str) -> Any:
        def export_(**kwargs: Any) -> str:
            self.exports.append(kwargs)
            if kwargs["format"] == self.fail:
                raise RuntimeError("ONNX: export failure ❌ 0.1s:\nUnsupported operator 'aten::foo'")
            made = Path(path).with_suffix(f".{kwargs['format']}")
            made.write_bytes(b"exported " + kwargs["format"].encode())
            return str(made)

        def val(**kwargs: Any) -> Any:
            self.vals.append((Path(path).suffix, kwargs))
            if Path(path).suffix == self.fail_val:
                raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH")
            return metrics(*self.figures[Path(path).suffix])

        return SimpleNamespace(export=export_, val=val)


def spec(tmp_path: Path, **fields: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec(model="yolov8n.yaml", data=str(tmp_path / "data.yaml"), imgsz=96, gpus=0,
                            hyperparameters={"workers": 0}, **fields)


def exporter(tmp_path: Path, fake: FakeUltralytics, reporter: Reporter, **fields: Any) -> tuple[Exporter, list[str]]:
    kept: list[str] = []

    def keep(name: str, path: Path) -> dict[str, Any]:
        kept.append(name)
        return {"name": name, "uri": f"s3://b/runs/t/{name}", "size": path.stat().st_size, "sha256": SHA}

    made = Exporter(spec(tmp_path, **fields), tmp_path / "data.yaml", tmp_path, ProgressTracker(3, clock, exports=2),
                    reporter, keep, load=fake)  # type: ignore[arg-type]
    return made, kept


def best(tmp_path: Path) -> Path:
    weights = tmp_path / "weights" / "best.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"weights")
    return weights


def test_each_export_is_recorded_against_one_fair_reference(tmp_path: Path) -> None:
    fake = FakeUltralytics({".pt": (0.61234, 0.40001), ".onnx": (0.61234, 0.39996), ".torchscript": (0.6123, 0.4)})
    reporter = Reporter()
    made, kept = exporter(tmp_path, fake, reporter, export=["onnx", "torchscript"])
    records = made.run(best(tmp_path))

    assert kept == ["best.onnx", "best.torchscript"]
    assert [r["format"] for r in records] == ["onnx", "torchscript"]
    onnx = ExportResult.model_validate(records[0])
    assert (onnx.artifact, onnx.uri, onnx.sha256) == ("best.onnx", "s3://b/runs/t/best.onnx", SHA)
    assert (onnx.map50, onnx.map50_95, onnx.reference_map50, onnx.reference_map50_95) == (0.6123, 0.4, 0.6123, 0.4)
    assert onnx.delta_map50 == 0.0 and onnx.delta_map50_95 == 0.0 and onnx.seconds is not None
    # the reference is best.pt validated once, under the exports' own settings: one image per batch, square images
    assert [suffix for suffix, _ in fake.vals] == [".pt", ".onnx", ".torchscript"]
    assert all(kwargs == fake.vals[0][1] for _, kwargs in fake.vals)
    assert fake.vals[0][1] == {
        "data": str(tmp_path / "data.yaml"), "imgsz": 96, "batch": 1, "rect": False, "device": "cpu",
        "plots": False, "project": str(tmp_path), "name": "export-val", "exist_ok": True, "verbose": False,
        "workers": 0}
    assert fake.exports[0] == {"format": "onnx", "imgsz": 96, "device": "cpu", "dynamic": False, "simplify": True,
                               "nms": False}
    assert reporter.state()["exports"] == records


def test_the_exporting_stage_moves_progress_from_90_to_100_never_backwards(tmp_path: Path) -> None:
    fake = FakeUltralytics({".pt": (0.5, 0.3), ".onnx": (0.5, 0.3), ".torchscript": (0.5, 0.3)})
    reporter = Reporter()
    made, _ = exporter(tmp_path, fake, reporter, export=["onnx", "torchscript"])
    made.run(best(tmp_path))
    steps = [(p["exportProgress"]["format"], p["exportProgress"]["done"], p["exportProgress"]["step"], p["progress"])
             for p in reporter.patches if "exportProgress" in p]
    assert steps == [("onnx", 0, "exporting", 90.0), ("onnx", 0, "validating", 92.5),
                     ("torchscript", 1, "exporting", 95.0), ("torchscript", 1, "validating", 97.5)]
    assert all(p["stage"] == "exporting" and p["exportProgress"]["total"] == 2
               for p in reporter.patches if "exportProgress" in p)


@pytest.mark.parametrize(("export_figure", "tolerance", "faithful"), [
    (0.4, 0.0, True), (0.395, 0.01, True), (0.389, 0.01, False), (0.42, 0.01, False), (0.3, 0.2, True)])
def test_mismatch_is_the_mAP50_95_difference_beyond_the_tolerance(export_figure: float, tolerance: float,
                                                                   faithful: bool) -> None:
    entry = {"name": "best.onnx", "uri": "/r/best.onnx", "size": 3, "sha256": SHA}
    record = export_record("onnx", entry, (0.6, export_figure), (0.6, 0.4), 1.0)
    message = mismatch(record, tolerance)
    assert (message is None) is faithful
    if message is not None:
        assert message.startswith("onnx export: mAP50-95 ") and f"{export_figure:.4f}" in message
        assert "0.4000" in message and f"tolerance {tolerance:g}" in message


def test_a_figure_that_is_not_a_number_cannot_be_verified() -> None:
    entry = {"name": "best.onnx", "uri": "/r/best.onnx", "size": 3, "sha256": SHA}
    record = export_record("onnx", entry, (float("nan"), float("nan")), (0.6, 0.4), 1.0)
    assert not {"mAP50", "mAP50-95", "deltaMAP50", "deltaMAP50-95"} & set(record)  # null figures are left out
    assert "not a number" in str(mismatch(record, 1.0))


def test_a_mismatch_fails_once_every_export_is_stored_and_recorded(tmp_path: Path) -> None:
    fake = FakeUltralytics({".pt": (0.6, 0.4), ".onnx": (0.3, 0.2), ".torchscript": (0.6, 0.4)})
    reporter = Reporter()
    made, kept = exporter(tmp_path, fake, reporter, export=["onnx", "torchscript"], export_tolerance=0.05)
    with pytest.raises(TrainingFailure) as failed:
        made.run(best(tmp_path))
    assert failed.value.reason is Reason.EXPORT_MISMATCH and failed.value.exit_code == EXIT_INVALID_INPUT
    assert failed.value.message == ("onnx export: mAP50-95 0.2000 differs from the .pt model's 0.4000 by 0.2000, "
                                    "more than the tolerance 0.05 (spec.exportTolerance)")
    assert kept == ["best.onnx", "best.torchscript"]
    assert [r["format"] for r in reporter.state()["exports"]] == ["onnx", "torchscript"]


def test_an_export_that_raises_fails_with_ultralytics_message_on_one_line(tmp_path: Path) -> None:
    fake = FakeUltralytics({".pt": (0.6, 0.4), ".onnx": (0.6, 0.4)}, fail="torchscript")
    reporter = Reporter()
    made, kept = exporter(tmp_path, fake, reporter, export=["onnx", "torchscript"])
    with pytest.raises(TrainingFailure) as failed:
        made.run(best(tmp_path))
    assert failed.value.reason is Reason.EXPORT_FAILED and failed.value.exit_code == EXIT_TRAINING_ERROR
    assert failed.value.message == "torchscript export failed: ONNX: export failure 0.1s: Unsupported operator 'aten::foo'"
    assert kept == ["best.onnx"] and [r["format"] for r in reporter.state()["exports"]] == ["onnx"]


@pytest.mark.parametrize(("suffix", "message"), [
    (".onnx", "onnx export failed validation: [ONNXRuntimeError] : 10 : INVALID_GRAPH"),
    (".pt", "validating best.pt, the exports' reference: [ONNXRuntimeError] : 10 : INVALID_GRAPH")])
def test_a_validation_that_raises_says_which_model_failed(tmp_path: Path, suffix: str, message: str) -> None:
    fake = FakeUltralytics({".pt": (0.6, 0.4), ".onnx": (0.6, 0.4)}, fail_val=suffix)
    made, kept = exporter(tmp_path, fake, Reporter(), export=["onnx"])
    with pytest.raises(TrainingFailure) as failed:
        made.run(best(tmp_path))
    assert (failed.value.reason, failed.value.message) == (Reason.EXPORT_FAILED, message)
    assert kept == ["best.onnx"]  # stored before it was validated


def test_missing_export_packages_fail_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None if name == "onnxslim" else real(name))
    check_dependencies(["torchscript"])
    with pytest.raises(TrainingFailure) as failed:
        check_dependencies(["onnx", "torchscript"])
    assert failed.value.reason is Reason.EXPORT_FAILED and failed.value.exit_code == EXIT_INVALID_INPUT
    assert failed.value.message == ("exporting to onnx, torchscript needs the package(s) onnxslim, which this "
                                    "trainer lacks (install the trainer extra)")


def finished_run(tmp_path: Path) -> Outcome:
    run = tmp_path / "runs" / "t"
    (run / "weights").mkdir(parents=True)
    for name in ("weights/best.pt", "weights/last.pt", "results.csv", "args.yaml", "confusion_matrix.png"):
        (run / name).write_bytes(b"x")
    final = FinalMetrics.from_validation(0.41, 0.2, 0.7, 0.5)
    return Outcome(final, run / "weights" / "best.pt", run, StopReason.EPOCHS)


@pytest.mark.parametrize(("criteria", "passed"), [({"mAP50": 0.99, "recall": 0.4}, False), ({"mAP50": 0.4}, True)])
def test_the_quality_gate_comes_in_the_final_reports_one_patch(tmp_path: Path, criteria: dict[str, float],
                                                                passed: bool) -> None:
    outcome = finished_run(tmp_path)
    data = tmp_path / "data.yaml"
    data.write_text("train: x\n")
    reporter = Reporter()
    deliver(spec(tmp_path, success_criteria=criteria), outcome, data, ProgressTracker(3, clock),
            reporter, None)  # type: ignore[arg-type]
    final = reporter.patches[-1]
    assert final["stage"] == "completed" and final["finalMetrics"]["mAP50"] == 0.41
    assert final["qualityGate"]["passed"] is passed
    if not passed:
        assert final["qualityGate"]["message"] == "quality gate not met: mAP50 0.41 < 0.99"
    kinds = {a["name"]: a["kind"] for a in final["artifacts"]}
    assert kinds == {"best.pt": "weights", "last.pt": "weights", "results.csv": "metrics", "args.yaml": "config",
                     "data.yaml": "config", "confusion_matrix.png": "plot"}
    status = TrainingStatus.model_validate(reporter.state())
    assert status.quality_gate is not None and status.quality_gate.passed is passed


def test_without_criteria_or_exports_the_final_report_says_nothing_of_them(tmp_path: Path) -> None:
    reporter = Reporter()
    data = tmp_path / "data.yaml"
    data.write_text("train: x\n")
    deliver(spec(tmp_path), finished_run(tmp_path), data, ProgressTracker(3, clock), reporter,
            None)  # type: ignore[arg-type]
    assert not {"qualityGate", "exports", "exportProgress"} & set(reporter.patches[-1])
