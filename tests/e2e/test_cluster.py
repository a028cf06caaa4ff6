"""Opt-in end-to-end tests on a real cluster: ``pytest --with-e2e [--local-kubelet]`` with KUBECONFIG set.

They install the CRD from the chart, run the real operator (kopf, in this process) in a fresh namespace
and check the same scenarios as the integration tests, with the real API server's semantics (status
subresource, uid, resourceVersion, garbage collection, RBAC). With ``--local-kubelet`` the Jobs' trainers
run as local processes (tests/kubelet.py), so the whole loop works on a bare control plane with no GPU
nodes (or no nodes at all).
"""

import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from kubelet import LocalKubelet
from trainings import G, P, V, create, jobs_of, status
from waiting import eventually

pytestmark = pytest.mark.e2e


def test_schema_rejects_out_of_range_and_unknown_fields(kube: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(kube)
    for spec in ({"epochs": 0}, {"imgsz": 9000}, {"gpus": 17}):
        with pytest.raises(client.ApiException) as rejected:
            custom.create_namespaced_custom_object(G, V, namespace, P, {
                "apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": "bad"},
                "spec": {"model": "m.yaml", "data": "d.yaml", **spec}})
        assert rejected.value.status == 422


def test_job_rbac_and_status_on_a_real_api_server(kube: client.ApiClient, namespace: str, operator: None) -> None:
    training = create(kube, namespace, "shapes", gpus=1)
    job_name = eventually(lambda: status(kube, namespace, "shapes").get("jobName"), timeout=120, interval=0.5)
    job = client.BatchV1Api(kube).read_namespaced_job(job_name, namespace)
    assert job.metadata.owner_references[0].uid == training["metadata"]["uid"]
    assert job.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    allowed = subprocess.run(["kubectl", "auth", "can-i", "patch", f"{P}.{G}/shapes", "--subresource=status", "-n",
                              namespace, f"--as=system:serviceaccount:{namespace}:{job_name}"],
                             capture_output=True, text=True, check=False)
    other = subprocess.run(["kubectl", "auth", "can-i", "patch", f"{P}.{G}/other", "--subresource=status", "-n",
                            namespace, f"--as=system:serviceaccount:{namespace}:{job_name}"],
                           capture_output=True, text=True, check=False)
    assert allowed.stdout.strip() == "yes" and other.stdout.strip() == "no"
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, namespace, P, "shapes")
    eventually(lambda: not jobs_of(kube, namespace, training["metadata"]["uid"]), timeout=120, interval=0.5)


def test_whole_loop_with_a_local_kubelet(kube: client.ApiClient, namespace: str, operator: None,
                                         kubelet: LocalKubelet, tmp_path: Path) -> None:
    from yolo_trainer.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", classes=2, train=48, val=16)
    create(kube, namespace, "loop", data=str(data), gpus=0, imgsz=64, batch=16, hyperparameters={"workers": 0},
           **kubelet.placement())
    final = eventually(lambda: status(kube, namespace, "loop").get("phase") in ("Succeeded", "Failed")
                       and status(kube, namespace, "loop"), timeout=300, interval=0.5)
    assert final["phase"] == "Succeeded", final
    assert set(final["finalMetrics"]) == {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
    subprocess.run(["kubectl", "wait", "-n", namespace, "--for=condition=Succeeded", f"{P}.{G}/loop",
                    "--timeout=30s"], check=True)
