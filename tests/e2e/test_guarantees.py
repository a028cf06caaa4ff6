"""Opt-in, on a real API server: the guarantees the cluster enforces (issue 18).

* one verdict: a trainer's accepted success stays a success when its Job's deadline expires afterwards
  (the real Job controller's DeadlineExceeded, recorded as the JobComplete condition and an Event);
* the spec is immutable but for ``suspend`` (the CRD's CEL rules, evaluated by kube-apiserver);
* retention: ``ttlSecondsAfterFinished`` deletes a finished training, its Job with it.
"""

import pytest
from kubernetes import client

from trainings import G, P, V, create, exists, jobs_of, status
from waiting import eventually

pytestmark = pytest.mark.e2e
FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def test_a_deadline_after_the_final_report_leaves_the_success_standing(kube: client.ApiClient, namespace: str,
                                                                       operator: None) -> None:
    """No node runs this trainer: its final report is written as the trainer writes it, then the real Job
    controller fails the Job on its activeDeadlineSeconds."""
    training = create(kube, namespace, "late", activeDeadlineSeconds=8, gpus=0)
    uid = training["metadata"]["uid"]
    eventually(lambda: jobs_of(kube, namespace, uid), timeout=60, interval=0.5)
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        G, V, namespace, P, "late", {"status": {"stage": "completed", "finalMetrics": FINAL, "progress": 100.0,
                                                "weightsPath": "/outputs/late/weights/best.pt"}})
    succeeded = eventually(lambda: status(kube, namespace, "late").get("phase") == "Succeeded"
                           and status(kube, namespace, "late"), timeout=60, interval=0.5)
    job_complete = {c["type"]: c for c in succeeded["conditions"]}["JobComplete"]
    assert job_complete["status"] == "Unknown"  # concluded on the report, while the Job still runs

    def recorded() -> dict[str, str] | None:
        conditions = {c["type"]: c for c in status(kube, namespace, "late").get("conditions") or []}
        return conditions["JobComplete"] if conditions["JobComplete"]["status"] == "False" else None

    condition = eventually(recorded, timeout=120, interval=0.5)
    assert condition["reason"] == "DeadlineExceeded" and "stands as succeeded" in condition["message"]
    final = status(kube, namespace, "late")
    assert final["phase"] == "Succeeded" and not final.get("reason")
    assert {c["type"]: c["status"] for c in final["conditions"]}["Succeeded"] == "True"
    events = client.CoreV1Api(kube).list_namespaced_event(namespace, field_selector=f"involvedObject.uid={uid}")
    assert "JobFailedAfterSuccess" in {event.reason for event in events.items}


def test_the_spec_is_immutable_but_for_suspend(kube: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube)
    create(kube, namespace, "fixed", hyperparameters={"lr0": 0.01}, tolerations=[{"key": "a", "operator": "Exists"}],
           affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
               {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}]}}})
    for change in ({"epochs": 9}, {"model": "yolov8s.yaml"}, {"hyperparameters": {"lr0": 0.5}},
                   {"hyperparameters": {"lr0": None, "optimizer": "SGD"}},  # a key swapped at the same size
                   {"tolerations": [{"key": "a", "effect": "NoSchedule"}]},
                   {"affinity": {"nodeAffinity": None, "podAffinity": {
                       "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone"}]}}},
                   {"image": "elsewhere/trainer:1"}, {"ttlSecondsAfterFinished": 5}):
        with pytest.raises(client.ApiException) as refused:
            custom.patch_namespaced_custom_object(G, V, namespace, P, "fixed", {"spec": change})
        field = next(iter(change))
        assert refused.value.status == 422 and f"spec.{field} cannot change once the training exists" in \
            refused.value.body, refused.value.body
    custom.patch_namespaced_custom_object(G, V, namespace, P, "fixed", {"spec": {"suspend": True}})
    custom.patch_namespaced_custom_object(G, V, namespace, P, "fixed",
                                          {"metadata": {"annotations": {"yolo-operator.io/cancel": "true"}}})
    stored = custom.get_namespaced_custom_object(G, V, namespace, P, "fixed")["spec"]
    assert stored["suspend"] is True and stored["epochs"] == 3 and stored["hyperparameters"] == {"lr0": 0.01}


def test_a_finished_training_is_deleted_after_its_ttl(kube: client.ApiClient, namespace: str,
                                                      operator: None) -> None:
    custom = client.CustomObjectsApi(kube)
    kept = create(kube, namespace, "kept", annotations={"yolo-operator.io/cancel": "true"}, suspend=True)
    reaped = create(kube, namespace, "reaped", annotations={"yolo-operator.io/cancel": "true"}, suspend=True,
                    ttlSecondsAfterFinished=2)
    eventually(lambda: status(kube, namespace, "kept").get("reason") == "Cancelled", timeout=60, interval=0.5)
    eventually(lambda: not exists(custom, namespace, "reaped"), timeout=60, interval=0.5)
    eventually(lambda: not jobs_of(kube, namespace, reaped["metadata"]["uid"]), timeout=60, interval=0.5)
    assert exists(custom, namespace, "kept") and kept["metadata"]["uid"]
