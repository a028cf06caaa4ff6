"""Opt-in: the chart against a real API server (``pytest --with-e2e`` with KUBECONFIG set).

``test_rendered_chart_applies_on_the_server`` needs only a cluster. ``test_install_and_train_through_the_api``
(also ``--with-images``) installs the chart with ``helm install --wait``, trains through the API pod and
uninstalls it, leaving nothing behind. Two ways to run it (docs/e2e.md):

* ``--local-kubelet``, on a control plane on this host (``../shared/kube``): the images built here
  (``make images``: ``localhost/yolo-{operator,api,trainer}:$YOLO_IMAGE_TAG``, default ``dev``) run with
  podman on a stand-in node (tests/podkubelet.py); the dataset claim is bound to a ``hostPath``
  PersistentVolume, a host folder where the test generates it; the API pod listens on the host's port 8000
  (the chart's container port), which must be free;
* otherwise on the cluster's own nodes: the images pushed where it can pull them (YOLO_E2E_IMAGE_PREFIX,
  e.g. ``registry.local:5000/yolo``: ``<prefix>/operator``, ``/api``, ``/trainer`` with tag
  YOLO_E2E_IMAGE_TAG, default ``dev``), and YOLO_E2E_DATA_PVC, a claim holding ``shapes/data.yaml``
  (``python -m yolo_trainer.synthetic``) in namespace YOLO_E2E_NAMESPACE (default ``yolo-e2e``), where
  the chart is installed; the API is reached through ``kubectl port-forward``.
"""

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from crd import ROOT
from trainings import G, P
from waiting import eventually

pytestmark = pytest.mark.e2e
CHART = ROOT / "deploy/helm/yolo-training-operator"
API_PORT = 8000  # the chart's API container port (args --port 8000)
RELEASE_KINDS = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,configmaps,secrets"


def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), input=stdin, capture_output=True, text=True, check=False)


def helm() -> str:
    """helm from PATH, else from the virtual environment's bin/ (where `make install` puts it)."""
    import shutil
    import sys

    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("helm is not installed: run `make install` (it puts helm into .venv/bin)")
    return found


def test_rendered_chart_applies_on_the_server(tmp_path: Path) -> None:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("--with-e2e needs KUBECONFIG pointing at a cluster")
    rendered = run(helm(), "template", "yolo", str(CHART), "--namespace", "default", "--include-crds")
    assert rendered.returncode == 0, rendered.stderr
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(rendered.stdout)
    applied = run("kubectl", "apply", "--dry-run=server", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr


E2E_USER_RBAC = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: e2e-user}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: e2e-user}
rules:
  - apiGroups: [yolo-operator.io]
    resources: [yolotrainings]
    verbs: [get, list, create, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: e2e-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: e2e-user}
subjects: [{kind: ServiceAccount, name: e2e-user}]
"""


@dataclass
class Setup:
    """Where the chart goes and what it is given: its namespace and release name, values, the dataset claim."""

    namespace: str
    release: str
    values: dict[str, Any]
    claim: str


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Setup, Any]]:
    """The chart's placement and images: on a podman stand-in node (``--local-kubelet``) or the cluster's own."""
    if not request.config.getoption("--local-kubelet"):
        prefix, claim = os.environ.get("YOLO_E2E_IMAGE_PREFIX"), os.environ.get("YOLO_E2E_DATA_PVC")
        if not prefix or not claim:
            pytest.fail("without --local-kubelet set YOLO_E2E_IMAGE_PREFIX and YOLO_E2E_DATA_PVC (module docstring)")
        tag = os.environ.get("YOLO_E2E_IMAGE_TAG", "dev")
        namespace = os.environ.get("YOLO_E2E_NAMESPACE", "yolo-e2e")
        images = {part: {"image": {"repository": f"{prefix}/{part}", "tag": tag}} for part in ("operator", "api", "trainer")}
        yield Setup(namespace, "yolo", images, claim), None
        return
    yield from _on_a_podman_node(request, tmp_path)


def _on_a_podman_node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Setup, Any]]:
    from podkubelet import PodmanKubelet
    from pods import Engine
    from yolo_trainer.synthetic import make_dataset

    engine, tag = Engine(), os.environ.get("YOLO_IMAGE_TAG", "dev")
    images = {part: f"localhost/yolo-{part}" for part in ("operator", "api", "trainer")}
    missing = [f"{image}:{tag}" for image in images.values() if engine("image", "inspect", f"{image}:{tag}").returncode]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)}; run `make images` (docs/images.md)")
    if listening(API_PORT):
        pytest.fail(f"port {API_PORT} is taken on this host: the API pod listens there on the podman stand-in node")
    kube = request.getfixturevalue("kube")
    namespace = request.getfixturevalue("namespace")
    core = client.CoreV1Api(kube)
    # the dataset, in a host folder that a hostPath PersistentVolume bound to the claim "datasets" holds
    volume = tmp_path / "volume"
    volume.mkdir(mode=0o755)
    data = make_dataset(volume / "shapes", classes=2, train=32, val=8, imgsz=64)
    data.write_text(data.read_text().replace(f"path: {data.parent.absolute()}", "path: /data/shapes"))
    pv = f"{namespace}-datasets"
    core.create_persistent_volume({"metadata": {"name": pv}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
        "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(volume), "type": "Directory"},
        "claimRef": {"namespace": namespace, "name": "datasets"}}})
    core.create_namespaced_persistent_volume_claim(namespace, {"metadata": {"name": "datasets"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv,
        "resources": {"requests": {"storage": "1Gi"}}}})
    # POST /train cannot ask for tolerations or a nodeSelector: the node takes any pod, as a one-node cluster's
    try:
        with PodmanKubelet(kube, Path(os.environ["KUBECONFIG"]), tmp_path / "node", engine=engine, taint=False) as node:
            placement = {"nodeSelector": {"kubernetes.io/hostname": node.node}}
            ports = [_free_port(), _free_port()]  # host network: the operator's ports must not collide with others'
            pulled = {part: {"image": {"repository": image, "tag": tag, "pullPolicy": "Never"}}
                      for part, image in images.items()}
            values = {"operator": {**pulled["operator"], "watchNamespaces": [namespace], "livenessPort": ports[0],
                                   "metricsPort": ports[1], **placement},
                      "api": {**pulled["api"], "replicas": 1, "defaultNamespace": namespace, **placement},
                      "trainer": pulled["trainer"]}
            yield Setup(namespace, f"yolo-{uuid.uuid4().hex[:6]}", values, "datasets"), node
    finally:
        core.delete_namespaced_persistent_volume_claim("datasets", namespace)
        core.delete_persistent_volume(pv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.image
def test_install_and_train_through_the_api(setup: tuple[Setup, Any], tmp_path: Path) -> None:
    where, node = setup
    namespace, release = where.namespace, where.release
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(where.values))
    forward: subprocess.Popen[str] | None = None
    installed = True  # a failed install leaves a release behind too
    try:
        done = run(helm(), "install", release, str(CHART), "--namespace", namespace, "--create-namespace", "--wait",
                   "--values", str(values), "--timeout", "3m")
        assert done.returncode == 0, done.stderr + (node.logs() if node else "")
        # a user with kubectl rights on yolotrainings in this namespace only; the API checks them per request
        rbac = run("kubectl", "-n", namespace, "apply", "-f", "-", stdin=E2E_USER_RBAC)
        assert rbac.returncode == 0, rbac.stderr
        token = run("kubectl", "-n", namespace, "create", "token", "e2e-user").stdout.strip()
        if node is None:
            port = _free_port()
            forward = subprocess.Popen(["kubectl", "-n", namespace, "port-forward",
                                        f"svc/{release}-yolo-training-operator-api", f"{port}:80"], text=True)
        else:
            port = API_PORT
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            task_id = _train(api, token, namespace, where.claim, node)
        if node is not None:  # the trainer ran on the stand-in node, in its image
            jobs = run("kubectl", "-n", namespace, "get", "jobs", "-o", "name", "-l", f"yolo-operator.io/task-id={task_id}")
            names = [name.removeprefix("job.batch/") for name in jobs.stdout.split()]
            assert names and set(names) <= set(node.started), (names, node.started)
        _delete_trainings(namespace)
        done = run(helm(), "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "3m")
        installed = done.returncode != 0
        assert not installed, done.stderr
        eventually(lambda: _left_behind(namespace, release) == "", timeout=120, interval=1)
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait()
        if installed:
            run("kubectl", "-n", namespace, "delete", "yolotrainings", "--all", "--wait=false")
            run(helm(), "uninstall", release, "--namespace", namespace)


def _train(api: httpx.Client, token: str, namespace: str, claim: str, node: Any) -> str:
    """A two-epoch training POSTed to the API pod, followed to its success envelope; its task id."""
    auth = {"Authorization": f"Bearer {token}"}
    body = {"model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 2, "imgsz": 64, "gpus": 0,
            "hyperparameters": {"workers": 0}, "name": "shapes", "namespace": namespace,
            "storage": {"volumes": [{"name": "data", "claimName": claim, "mountPath": "/data"}], "outputVolume": "data"}}

    def answer(path: str) -> httpx.Response | None:
        try:
            return api.get(path)
        except httpx.TransportError:  # a port-forward still starting
            return None

    unauthenticated = eventually(lambda: answer("/tasks"), timeout=60, interval=0.5)
    assert unauthenticated.status_code == 401
    submitted = api.post("/train", json=body, headers=auth)
    assert submitted.status_code == 200 and submitted.json()["code"] == 0, submitted.text
    task_id = submitted.json()["data"]["task_id"]
    denied = api.post("/train", json={**body, "namespace": "default"}, headers=auth)
    assert denied.status_code == 403, denied.text  # no rights in another namespace

    def finished() -> dict[str, Any] | None:
        data = dict(api.get(f"/task_status/{task_id}", headers=auth).json()["data"])
        return data if data["status"] in ("success", "failure") else None

    try:
        final = eventually(finished, timeout=600, interval=2)
    except AssertionError:
        raise AssertionError(node.logs() if node else "not finished") from None
    assert final["status"] == "success", f"{final}\n{node.logs() if node else ''}"
    assert set(final["result"]["final_metrics"]) == {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
    return str(task_id)


def _delete_trainings(namespace: str) -> None:
    """Delete the trainings; their Jobs, pods and per-training RBAC go with them (garbage collection)."""
    deleted = run("kubectl", "-n", namespace, "delete", "yolotrainings", "--all", "--wait=true", "--timeout=60s")
    assert deleted.returncode == 0, deleted.stderr
    owned = "jobs,pods,serviceaccounts,roles,rolebindings"
    eventually(lambda: run("kubectl", "-n", namespace, "get", owned, "-o", "name",
                           "-l", "app.kubernetes.io/managed-by=yolo-training-operator").stdout == "", timeout=120)


def _left_behind(namespace: str, release: str) -> str:
    """What of the release (and of its trainings) is still there: names, one a line; empty when nothing."""
    selector = f"app.kubernetes.io/instance={release}"
    named = run("kubectl", "-n", namespace, "get", RELEASE_KINDS, "-o", "name", "-l", selector).stdout
    cluster = run("kubectl", "get", "clusterroles,clusterrolebindings", "-o", "name", "-l", selector).stdout
    pods = run("kubectl", "-n", namespace, "get", "pods", "-o", "name").stdout
    left = run("kubectl", "-n", namespace, "get", f"{P}.{G}", "-o", "name").stdout
    return named + cluster + pods + left
