"""Opt-in: the lifecycle's edges on a real API server (issue 11), the same scenarios as the integration tests.

A real kube-apiserver is where the emulator's semantics are checked: the status subresource ignoring a
uid, the CEL transition rule, schema validation of status writes, garbage collection after a delay, and
(with ``--local-kubelet`` on a cluster that runs kube-controller-manager) the real Job controller's
FailureTarget before Failed. A training whose trainer runs asks for the stand-in node
(``kubelet.placement()``), which is tainted on a real cluster.
"""

import subprocess

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from kubelet import LocalKubelet
from trainings import G, P, V, create, exists, jobs_of, status
from waiting import eventually
from yolo_trainer.sinks import SinkError
from yolo_trainer.sinks.kubernetes import KubernetesStatusSink

pytestmark = pytest.mark.e2e
CANCEL = {"yolo-operator.io/cancel": "true"}


def operator_in(namespace: str) -> KopfRunner:
    return KopfRunner(["run", "-m", "yolo_operator.handlers", "--standalone", "--namespace", namespace])


def test_the_trainers_failure_is_the_final_reason(kube: client.ApiClient, namespace: str, operator: None,
                                                  kubelet: LocalKubelet) -> None:
    create(kube, namespace, "broken", data="/nowhere/data.yaml", gpus=0, imgsz=64, **kubelet.placement())
    final = eventually(lambda: status(kube, namespace, "broken").get("phase") == "Failed"
                       and status(kube, namespace, "broken"), timeout=180, interval=0.5)
    assert final["reason"] == "DatasetInvalid" and "/nowhere/data.yaml" in final["message"]
    assert final["trainingFailure"]["reason"] == "DatasetInvalid" and final["stage"] == "failed"
    subprocess.run(["kubectl", "wait", "-n", namespace, "--for=condition=Succeeded=False", f"{P}.{G}/broken",
                    "--timeout=30s"], check=True)


def test_a_pod_a_quota_refuses_says_why(kube: client.ApiClient, namespace: str, operator: None,
                                        kubelet: LocalKubelet) -> None:
    """The Job controller's FailedCreate (a ResourceQuota refused the pod) becomes the training's reason."""
    client.CoreV1Api(kube).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
    create(kube, namespace, "over-quota", gpus=0, imgsz=64, **kubelet.placement())
    waiting = eventually(lambda: "exceeded quota: no-pods" in str(status(kube, namespace, "over-quota").get("message"))
                         and status(kube, namespace, "over-quota"), timeout=120, interval=0.5)
    assert waiting["phase"] == "Pending" and waiting["reason"] == "FailedCreate"


def test_cancel_before_the_first_reconcile(kube: client.ApiClient, namespace: str) -> None:
    early = create(kube, namespace, "early", annotations=CANCEL, suspend=True)  # no operator has seen it
    with operator_in(namespace) as runner:
        eventually(lambda: status(kube, namespace, "early").get("reason") == "Cancelled", timeout=60, interval=0.5)
    assert runner.exit_code == 0, runner.output
    assert status(kube, namespace, "early")["phase"] == "Failed"
    assert jobs_of(kube, namespace, early["metadata"]["uid"]) == []


def test_a_reused_name_never_adopts_the_old_job(kube: client.ApiClient, namespace: str, operator: None) -> None:
    custom = client.CustomObjectsApi(kube)
    old = create(kube, namespace, "reuse")
    eventually(lambda: jobs_of(kube, namespace, old["metadata"]["uid"]), timeout=60, interval=0.5)
    custom.delete_namespaced_custom_object(G, V, namespace, P, "reuse")
    eventually(lambda: not exists(custom, namespace, "reuse"), timeout=30, interval=0.2)
    new = create(kube, namespace, "reuse", epochs=7)
    [job] = eventually(lambda: jobs_of(kube, namespace, new["metadata"]["uid"]), timeout=60, interval=0.5)
    assert job.metadata.owner_references[0].uid == new["metadata"]["uid"]
    eventually(lambda: status(kube, namespace, "reuse").get("jobName") == job.metadata.name, timeout=60)


def test_a_trainer_never_writes_another_training_of_its_name(kube: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube)
    old = create(kube, namespace, "named")
    custom.delete_namespaced_custom_object(G, V, namespace, P, "named")
    eventually(lambda: not exists(custom, namespace, "named"), timeout=30, interval=0.2)
    create(kube, namespace, "named")
    sink = KubernetesStatusSink(namespace, "named", uid=old["metadata"]["uid"], api_client=kube)
    with pytest.raises(SinkError) as refused:
        sink.send({"stage": "training"})
    assert not refused.value.retryable
    assert "stage" not in status(kube, namespace, "named")


def test_a_job_deleted_while_the_operator_is_down_is_not_made_again(kube: client.ApiClient,
                                                                   namespace: str) -> None:
    with operator_in(namespace):
        training = create(kube, namespace, "orphaned")
        eventually(lambda: status(kube, namespace, "orphaned").get("jobName"), timeout=60, interval=0.5)
    uid = training["metadata"]["uid"]
    [job] = jobs_of(kube, namespace, uid)
    client.BatchV1Api(kube).delete_namespaced_job(job.metadata.name, namespace, propagation_policy="Background")
    eventually(lambda: not jobs_of(kube, namespace, uid), timeout=30, interval=0.2)
    with operator_in(namespace) as runner:
        final = eventually(lambda: status(kube, namespace, "orphaned").get("phase") == "Failed"
                           and status(kube, namespace, "orphaned"), timeout=60, interval=0.5)
    assert runner.exit_code == 0, runner.output
    assert final["reason"] == "JobDeleted" and jobs_of(kube, namespace, uid) == []


def test_deleting_needs_no_operator(kube: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube)
    with operator_in(namespace):
        training = create(kube, namespace, "leftover")
        eventually(lambda: jobs_of(kube, namespace, training["metadata"]["uid"]), timeout=60, interval=0.5)
    assert not custom.get_namespaced_custom_object(G, V, namespace, P, "leftover")["metadata"].get("finalizers")
    custom.delete_namespaced_custom_object(G, V, namespace, P, "leftover")
    eventually(lambda: not exists(custom, namespace, "leftover"), timeout=10, interval=0.2)
    eventually(lambda: not jobs_of(kube, namespace, training["metadata"]["uid"]), timeout=60, interval=0.5)


def test_observed_generation_follows_suspend_and_resume(kube: client.ApiClient, namespace: str, operator: None) -> None:
    custom = client.CustomObjectsApi(kube)
    create(kube, namespace, "paused")
    eventually(lambda: status(kube, namespace, "paused").get("observedGeneration") == 1, timeout=60, interval=0.5)
    custom.patch_namespaced_custom_object(G, V, namespace, P, "paused", {"spec": {"suspend": True}})
    eventually(lambda: status(kube, namespace, "paused").get("observedGeneration") == 2
               and status(kube, namespace, "paused").get("reason") == "Queued", timeout=60, interval=0.5)
    custom.patch_namespaced_custom_object(G, V, namespace, P, "paused", {"spec": {"suspend": False}})
    eventually(lambda: status(kube, namespace, "paused").get("observedGeneration") == 3, timeout=60, interval=0.5)


def test_the_server_validates_status_and_keeps_finished_trainings_finished(kube: client.ApiClient,
                                                                          namespace: str) -> None:
    custom = client.CustomObjectsApi(kube)
    create(kube, namespace, "final")

    def write(patch: dict[str, object]) -> None:
        custom.patch_namespaced_custom_object_status(G, V, namespace, P, "final", {"status": patch},
                                                     _content_type="application/merge-patch+json")

    for bad in ({"progress": 133}, {"stage": "queued"}, {"trainingFailure": {"reason": "X"}}):
        with pytest.raises(client.ApiException) as refused:
            write(bad)
        assert refused.value.status == 422, bad
    write({"phase": "Failed", "reason": "Cancelled"})
    with pytest.raises(client.ApiException) as refused:
        write({"phase": "Running"})
    assert refused.value.status == 422 and "cannot change phase" in refused.value.body
