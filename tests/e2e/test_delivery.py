"""Opt-in, on a real API server: quality gates and exports (issue 20).

* the schema refuses an unknown export format and criteria it cannot judge, naming the field, and the
  new fields are immutable like the rest of the spec;
* a gate the trainer reports as met concludes a success with ``QualityGate=True`` (``kubectl wait`` works);
* the whole loop with a real trainer: criteria no two-epoch model can meet end Failed/QualityGateNotMet,
  the ONNX export made and validated, its weights and export kept in ``status.artifacts``.
"""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubelet import LocalKubelet
from trainings import G, P, V, create, jobs_of, status
from waiting import eventually

pytestmark = pytest.mark.e2e
FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def conditions(kube: client.ApiClient, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status(kube, namespace, name).get("conditions") or []}


@pytest.mark.parametrize(("spec", "field"), [
    ({"export": ["tflite"]}, "spec.export[0]"),
    ({"successCriteria": {"accuracy": 0.5}}, "unknown metric: successCriteria takes"),
    ({"successCriteria": {"mAP50": 1.5}}, "spec.successCriteria.mAP50"),
    ({"successCriteria": {}}, "spec.successCriteria"),
    ({"exportTolerance": -0.1}, "spec.exportTolerance"),
])
def test_the_schema_refuses_formats_and_criteria_it_cannot_use(kube: client.ApiClient, namespace: str,
                                                               spec: dict[str, Any], field: str) -> None:
    with pytest.raises(client.ApiException) as refused:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, namespace, P, {
            "apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": "bad"},
            "spec": {"model": "m.yaml", "data": "d.yaml", **spec}})
    assert refused.value.status == 422 and field in str(refused.value.body), refused.value.body


def test_export_and_criteria_are_immutable(kube: client.ApiClient, namespace: str) -> None:
    create(kube, namespace, "fixed", gpus=0, export=["onnx"], successCriteria={"mAP50": 0.5})
    custom = client.CustomObjectsApi(kube)
    for change in ({"export": ["onnx", "torchscript"]}, {"successCriteria": {"mAP50": 0.1}},
                   {"exportTolerance": 0.5}):
        with pytest.raises(client.ApiException) as refused:
            custom.patch_namespaced_custom_object(G, V, namespace, P, "fixed", {"spec": change})
        assert refused.value.status == 422 and f"spec.{next(iter(change))} cannot change" in str(refused.value.body)


def test_a_met_gate_succeeds_with_its_condition(kube: client.ApiClient, namespace: str, operator: None) -> None:
    """No node runs this trainer: its final report is written as the trainer writes it."""
    training = create(kube, namespace, "gated", gpus=0, successCriteria={"mAP50": 0.4})
    eventually(lambda: jobs_of(kube, namespace, training["metadata"]["uid"]), timeout=60, interval=0.5)
    gate = {"passed": True, "message": "quality gate met: mAP50 0.5 >= 0.4"}
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        G, V, namespace, P, "gated", {"status": {"stage": "completed", "finalMetrics": FINAL, "qualityGate": gate}})
    waited = subprocess.run(["kubectl", "wait", "-n", namespace,
                             "--for=condition=QualityGate", f"{P}.{G}/gated", "--timeout=60s"],
                            capture_output=True, text=True, check=False)
    assert waited.returncode == 0, waited.stderr
    gated = conditions(kube, namespace, "gated")["QualityGate"]
    assert gated["reason"] == "QualityGateMet" and gated["message"] == gate["message"]
    assert status(kube, namespace, "gated")["phase"] == "Succeeded"


def test_a_missed_gate_fails_and_keeps_its_weights_and_export(kube: client.ApiClient, namespace: str, operator: None,
                                                               kubelet: LocalKubelet, tmp_path: Path) -> None:
    from yolo_trainer.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", classes=2, train=32, val=8)
    create(kube, namespace, "near-miss", data=str(data), gpus=0, epochs=2, imgsz=64, batch=8,
           hyperparameters={"workers": 0}, export=["onnx"], exportTolerance=1.0,
           successCriteria={"mAP50": 0.999, "recall": 0.999}, **kubelet.placement())
    waited = subprocess.run(["kubectl", "wait", "-n", namespace,
                             "--for=condition=QualityGate=False", f"{P}.{G}/near-miss", "--timeout=300s"],
                            capture_output=True, text=True, check=False)
    assert waited.returncode == 0, (waited.stderr, status(kube, namespace, "near-miss"))
    final = eventually(lambda: status(kube, namespace, "near-miss").get("phase") == "Failed"
                       and status(kube, namespace, "near-miss"), timeout=60, interval=0.5)
    assert final["reason"] == "QualityGateNotMet", final
    assert "mAP50" in final["message"] and "< 0.999" in final["message"]
    gate = conditions(kube, namespace, "near-miss")["QualityGate"]
    assert gate["status"] == "False" and gate["message"] == final["qualityGate"]["message"]
    kinds = {artifact["name"]: artifact.get("kind") for artifact in final["artifacts"]}
    assert kinds["best.pt"] == "weights" and kinds["best.onnx"] == "export"
    (onnx,) = final["exports"]
    assert onnx["format"] == "onnx" and onnx["artifact"] == "best.onnx" and "mAP50-95" in onnx
