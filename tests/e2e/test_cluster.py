"""Opt-in end-to-end tests on a real cluster: ``pytest --with-e2e [--local-kubelet]`` with KUBECONFIG set.

They install the CRD from the chart, run the real operator (kopf, in this process) in a fresh namespace
and check the same scenarios as the integration tests, with the real API server's semantics (status
subresource, uid, resourceVersion, garbage collection, RBAC). With ``--local-kubelet`` the Jobs' trainers
run as local processes (tests/kubelet.py), so the whole loop works on a bare control plane with no GPU
nodes (or no nodes at all).
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, config

from crd import CRD_PATH
from kubelet import LocalKubelet
from waiting import eventually

pytestmark = pytest.mark.e2e
G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"


@pytest.fixture(scope="module")
def kube() -> Iterator[client.ApiClient]:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("--with-e2e needs KUBECONFIG pointing at a cluster")
    subprocess.run(["kubectl", "apply", "--server-side", "-f", str(CRD_PATH)], check=True)
    subprocess.run(["kubectl", "wait", "--for=condition=Established", f"crd/{P}.{G}", "--timeout=60s"], check=True)
    with config.new_client_from_config(os.environ["KUBECONFIG"]) as api:
        yield api


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    name = f"yolo-e2e-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(kube).delete_namespace(name)


@pytest.fixture
def operator(namespace: str) -> Iterator[None]:
    with KopfRunner(["run", "-m", "yolo_operator.handlers", "--standalone", "--namespace", namespace]) as runner:
        yield
    assert runner.exit_code == 0, runner.output


def create(kube: client.ApiClient, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": name},
            "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, namespace, P, body))


def status(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, namespace, P, name)
    return dict(obj.get("status") or {})


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
    eventually(lambda: status(kube, namespace, "shapes").get("jobName"), timeout=120, interval=0.5)
    job = client.BatchV1Api(kube).read_namespaced_job("shapes-train", namespace)
    assert job.metadata.owner_references[0].uid == training["metadata"]["uid"]
    assert job.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    allowed = subprocess.run(["kubectl", "auth", "can-i", "patch", f"{P}.{G}/shapes", "--subresource=status", "-n",
                              namespace, f"--as=system:serviceaccount:{namespace}:shapes-train"],
                             capture_output=True, text=True, check=False)
    other = subprocess.run(["kubectl", "auth", "can-i", "patch", f"{P}.{G}/other", "--subresource=status", "-n",
                            namespace, f"--as=system:serviceaccount:{namespace}:shapes-train"],
                           capture_output=True, text=True, check=False)
    assert allowed.stdout.strip() == "yes" and other.stdout.strip() == "no"
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, namespace, P, "shapes")
    eventually(lambda: not client.BatchV1Api(kube).list_namespaced_job(namespace).items, timeout=120, interval=0.5)


def test_whole_loop_with_a_local_kubelet(kube: client.ApiClient, namespace: str, operator: None,
                                         request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if not request.config.getoption("--local-kubelet"):
        pytest.skip("needs --local-kubelet (or GPU nodes that can pull the trainer image)")
    from yolo_trainer.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", classes=2, train=48, val=16)
    with LocalKubelet(kube, Path(os.environ["KUBECONFIG"]), tmp_path):
        create(kube, namespace, "loop", data=str(data), gpus=0, imgsz=64, batch=16,
               hyperparameters={"workers": 0})
        final = eventually(lambda: status(kube, namespace, "loop").get("phase") in ("Succeeded", "Failed")
                           and status(kube, namespace, "loop"), timeout=300, interval=0.5)
    assert final["phase"] == "Succeeded", final
    assert set(final["finalMetrics"]) == {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
