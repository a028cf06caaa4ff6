"""Quality gates and export settings in the contract: the spec refuses what cannot be judged, the trainer's
judgement (``qualityGate``) decides the verdict, the envelope shows it, and the operator keeps the
``QualityGate`` condition for every training with criteria."""

import sqlite3
from typing import Any

import pytest
from pydantic import ValidationError

from crd import openapi_schema
from schema import SchemaError, StructuralSchema
from yolo_crd.delivery import QUALITY_GATE_CONDITION, SuccessCriteria, judge
from yolo_crd.envelope import task_envelope
from yolo_crd.outcome import RunEnd, TaskState, Verdict, final, gate_condition, task_state, verdict
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import Phase, TrainingStatus
from yolo_crd.wire import one_line
from yolo_io import local_store
from yolo_operator.translate import Observation, conclude, with_quality_gate

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
MISSED = {"passed": False, "message": "quality gate not met: mAP50 0.5 < 0.9"}
MET = {"passed": True, "message": "quality gate met: mAP50 0.5 >= 0.4"}


def status(**wire: Any) -> TrainingStatus:
    return TrainingStatus.model_validate(wire)


def reported(gate: dict[str, Any] | None) -> TrainingStatus:
    wire: dict[str, Any] = {"phase": "Running", "stage": "completed", "finalMetrics": FINAL,
                            "weightsPath": "/o/best.pt"}
    if gate is not None:
        wire["qualityGate"] = gate
    return status(**wire)


def spec(**fields: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec.model_validate({"model": "yolov8n.yaml", "data": "d.yaml", **fields})


def test_judge_names_each_missed_metric_its_value_and_threshold() -> None:
    criteria = SuccessCriteria.model_validate({"mAP50": 0.6, "recall": 0.4, "f1Score": 0.7})
    gate = judge(criteria, FINAL)
    assert not gate.passed
    assert gate.message == "quality gate not met: mAP50 0.5 < 0.6; f1Score 0.5455 < 0.7"
    assert judge(SuccessCriteria.model_validate({"mAP50-95": 0.3, "precision": 0.5}), FINAL).passed


def test_a_metric_that_is_not_a_number_misses_its_threshold() -> None:
    gate = judge(SuccessCriteria.model_validate({"mAP50": 0.1}), {**FINAL, "mAP50": None})
    assert not gate.passed and "mAP50 is not a number" in gate.message


@pytest.mark.parametrize(("fields", "names"), [
    ({"successCriteria": {"accuracy": 0.5}}, ["successCriteria", "unknown metric(s) 'accuracy'", "f1Score"]),
    ({"successCriteria": {"mAP50": 1.5}}, ["successCriteria.mAP50", "less than or equal to 1"]),
    ({"successCriteria": {"recall": -0.1}}, ["successCriteria.recall", "greater than or equal to 0"]),
    ({"successCriteria": {}}, ["successCriteria", "at least one"]),
    ({"export": ["tflite"]}, ["export.0", "'onnx' or 'torchscript'"]),
    ({"export": ["onnx", "onnx"]}, ["export", "twice"]),
    ({"exportTolerance": 2}, ["exportTolerance", "less than or equal to 1"]),
])
def test_bad_criteria_and_formats_are_refused_naming_the_field(fields: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    text = one_line(caught.value)
    assert all(name in text for name in names), text


def test_export_tolerance_defaults_to_one_hundredth() -> None:
    assert spec().export_limit() == 0.01
    assert spec(exportTolerance=0.05).export_limit() == 0.05
    assert "exportTolerance" not in spec().wire()  # an unset default is not written into every resource


@pytest.mark.parametrize("end", [None, RunEnd(True), RunEnd(False, "DeadlineExceeded", "too long")])
def test_a_missed_gate_is_a_final_failure_on_the_report(end: RunEnd | None) -> None:
    found = verdict(reported(MISSED), end)
    assert found == Verdict(Phase.FAILED, "QualityGateNotMet", MISSED["message"])
    assert final(reported(MISSED)) and task_state(reported(MISSED)) is TaskState.FAILURE


def test_a_met_gate_is_a_success() -> None:
    assert verdict(reported(MET), None) == Verdict(Phase.SUCCEEDED)
    assert task_state(reported(MET)) is TaskState.SUCCESS


def test_the_envelope_carries_the_gate_for_success_and_failure_alike() -> None:
    code, body = task_envelope("t1", reported(MET))
    assert code == 200 and body["data"]["quality_gate"] == MET
    assert body["data"]["result"]["final_metrics"]["mAP50"] == 0.5
    failed = status(**reported(MISSED).wire(), artifacts=[
        {"name": "best.pt", "uri": "/o/best.pt", "size": 3, "sha256": "a" * 64, "kind": "weights"}])
    code, body = task_envelope("t1", failed)
    assert code == 500 and body["code"] == 1
    assert body["data"]["status"] == "failure" and body["data"]["reason"] == "QualityGateNotMet"
    assert body["data"]["error"] == MISSED["message"] and body["data"]["quality_gate"] == MISSED
    assert body["data"]["artifacts"][0]["name"] == "best.pt"  # the weights of a near miss stay reachable
    code, body = task_envelope("t1", reported(None))
    assert "quality_gate" not in body["data"]


def test_the_operator_concludes_a_missed_gate_with_its_condition() -> None:
    found = conclude(reported(MISSED), None)
    assert found is not None and found.patch["phase"] == "Failed"
    assert found.patch["reason"] == "QualityGateNotMet" and found.patch["message"] == MISSED["message"]
    gated = with_quality_gate(found, reported(MISSED), {"successCriteria": {"mAP50": 0.9}})
    kinds = {c["type"]: c for c in gated.patch["conditions"]}
    assert kinds[QUALITY_GATE_CONDITION]["status"] == "False"
    assert kinds[QUALITY_GATE_CONDITION]["reason"] == "QualityGateNotMet"
    assert kinds["Succeeded"]["status"] == "False"


def test_a_training_with_criteria_that_ended_early_says_the_gate_was_not_evaluated() -> None:
    early = status(phase="Running", stage="failed", trainingFailure={"reason": "DatasetInvalid", "message": "x"})
    found = conclude(early, RunEnd(False, "BackoffLimitExceeded", "retries"))
    assert found is not None
    gated = with_quality_gate(found, early, {"successCriteria": {"recall": 0.5}})
    condition = next(c for c in gated.patch["conditions"] if c["type"] == QUALITY_GATE_CONDITION)
    assert (condition["status"], condition["reason"]) == ("False", "NotEvaluated")
    assert gate_condition(reported(MET))[1:3] == ("True", "QualityGateMet")


def test_without_criteria_or_before_the_end_there_is_no_gate_condition() -> None:
    found = conclude(reported(None), None)
    assert found is not None
    assert all(c["type"] != QUALITY_GATE_CONDITION
               for c in with_quality_gate(found, reported(None), {}).patch["conditions"])
    running = Observation({"phase": "Running"})
    assert with_quality_gate(running, status(), {"successCriteria": {"recall": 0.5}}).patch == {"phase": "Running"}


def test_the_local_store_holds_the_same_rules(tmp_path: Any) -> None:
    conn: sqlite3.Connection = local_store.connect(tmp_path / "state.db")
    local_store.insert_task(conn, "t1", "a", {"model": "m.yaml", "data": "d.yaml"})
    local_store.patch_status(conn, "t1", reported(MISSED).wire())
    with pytest.raises(local_store.FinalPhaseError):
        local_store.patch_status(conn, "t1", {"phase": "Succeeded"})
    assert local_store.patch_status(conn, "t1", {"phase": "Failed", "reason": "QualityGateNotMet"})
    local_store.insert_task(conn, "t2", "b", {"model": "m.yaml", "data": "d.yaml"})
    local_store.patch_status(conn, "t2", reported(MET).wire())
    with pytest.raises(local_store.FinalPhaseError):
        local_store.patch_status(conn, "t2", {"phase": "Failed", "reason": "Cancelled"})
    assert local_store.patch_status(conn, "t2", {"phase": "Succeeded"})


@pytest.mark.parametrize(("criteria", "says"), [
    ({"accuracy": 0.5}, "unknown metric"), ({"mAP50": 1.5}, "successCriteria.mAP50"), ({}, "successCriteria"),
])
def test_the_crd_refuses_criteria_it_cannot_judge(criteria: dict[str, Any], says: str) -> None:
    schema = StructuralSchema("YoloTraining", openapi_schema())
    with pytest.raises(SchemaError, match=says):
        schema.admit({"spec": {"model": "m.yaml", "data": "d.yaml", "successCriteria": criteria}}, None)
    schema.admit({"spec": {"model": "m.yaml", "data": "d.yaml", "successCriteria": {"mAP50-95": 0.3}}}, None)


def test_the_local_backend_writes_the_gate_verdict_condition_and_envelope(tmp_path: Any) -> None:
    """Locally the backend plays the operator: the missed gate is the verdict, with the QualityGate condition,
    and the envelope carries ``quality_gate`` (the trainer's report is written as the trainer writes it)."""
    from yolo_api.backends.local import LocalBackend
    from yolo_api.settings import ApiSettings

    (tmp_path / "d.yaml").write_text("train: x\n")
    backend = LocalBackend(ApiSettings(backend="local", state_dir=tmp_path / "state", local_gpus=0,
                                       allowed_roots=[tmp_path]))
    gated = spec(data=str(tmp_path / "d.yaml"), gpus=0, successCriteria={"mAP50": 0.9})
    task = backend.submit(gated, "near-miss", None).task_id
    local_store.patch_status(backend._conn, task, reported(MISSED).model_dump(by_alias=True, exclude_none=True,
                                                                              exclude={"phase"}))
    assert backend.conclude(task, RunEnd(True)) == Verdict(Phase.FAILED, "QualityGateNotMet", MISSED["message"])
    record = backend.get(task)
    assert record is not None and record.status is not None
    condition = record.status.condition(QUALITY_GATE_CONDITION)
    assert condition is not None and (condition.status, condition.reason) == ("False", "QualityGateNotMet")
    code, body = record.envelope()
    assert code == 500 and body["data"]["quality_gate"] == MISSED and body["data"]["reason"] == "QualityGateNotMet"
