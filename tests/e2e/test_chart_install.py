"""Opt-in: the chart against a real API server (``pytest --with-e2e`` with KUBECONFIG set).

``test_rendered_chart_applies_on_the_server`` needs only a cluster. ``test_install_and_train_through_the_api``
also needs the three images built from this repository (``make images``, docs/images.md) and pushed
where the cluster can pull them: set YOLO_E2E_IMAGE_PREFIX (e.g. ``registry.local:5000/yolo``; images
``<prefix>/operator``, ``/api``, ``/trainer`` with tag YOLO_E2E_IMAGE_TAG, default ``dev``) and
YOLO_E2E_DATA_PVC, a PVC holding ``shapes/data.yaml`` (``python -m yolo_trainer.synthetic``) in namespace
YOLO_E2E_NAMESPACE (default ``yolo-e2e``), where the chart is installed for the test.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from crd import ROOT

pytestmark = pytest.mark.e2e
CHART = ROOT / "deploy/helm/yolo-training-operator"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def test_rendered_chart_applies_on_the_server(tmp_path: Path) -> None:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("--with-e2e needs KUBECONFIG pointing at a cluster")
    rendered = run("helm", "template", "yolo", str(CHART), "--namespace", "default", "--include-crds")
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


def test_install_and_train_through_the_api() -> None:
    prefix, pvc = os.environ.get("YOLO_E2E_IMAGE_PREFIX"), os.environ.get("YOLO_E2E_DATA_PVC")
    if not prefix or not pvc:
        pytest.fail("set YOLO_E2E_IMAGE_PREFIX and YOLO_E2E_DATA_PVC (see the module docstring)")
    tag = os.environ.get("YOLO_E2E_IMAGE_TAG", "dev")
    namespace = os.environ.get("YOLO_E2E_NAMESPACE", "yolo-e2e")  # where the data PVC lives
    installed = run("helm", "install", "yolo", str(CHART), "--namespace", namespace, "--create-namespace", "--wait",
                    "--set", f"operator.image.repository={prefix}/operator", "--set", f"operator.image.tag={tag}",
                    "--set", f"api.image.repository={prefix}/api", "--set", f"api.image.tag={tag}",
                    "--set", f"trainer.image.repository={prefix}/trainer", "--set", f"trainer.image.tag={tag}",
                    "--set", f"api.defaultNamespace={namespace}", "--set", "api.replicas=1", "--timeout", "5m")
    assert installed.returncode == 0, installed.stderr
    # a user with kubectl rights on yolotrainings in this namespace only; the API checks them per request
    rbac = subprocess.run(["kubectl", "-n", namespace, "apply", "-f", "-"], input=E2E_USER_RBAC,
                          capture_output=True, text=True, check=False)
    assert rbac.returncode == 0, rbac.stderr
    token = run("kubectl", "-n", namespace, "create", "token", "e2e-user").stdout.strip()
    auth = ["-H", f"Authorization: Bearer {token}"]
    body = {"model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 3, "imgsz": 64, "gpus": 0,
            "name": "shapes", "namespace": namespace,
            "storage": {"volumes": [{"name": "data", "claimName": pvc, "mountPath": "/data"}], "outputVolume": "data"}}
    forward = subprocess.Popen(["kubectl", "-n", namespace, "port-forward", "svc/yolo-yolo-training-operator-api",
                                "18080:80"])
    task_id = ""
    try:
        time.sleep(3)
        assert run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "localhost:18080/tasks").stdout == "401"
        submitted = json.loads(run("curl", "-s", *auth, "-H", "Content-Type: application/json", "-d",
                                   json.dumps(body), "localhost:18080/train").stdout)
        assert submitted["code"] == 0, submitted
        task_id = submitted["data"]["task_id"]
        other = {**body, "namespace": "default"}
        denied = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *auth, "-H",
                     "Content-Type: application/json", "-d", json.dumps(other), "localhost:18080/train")
        assert denied.stdout == "403"  # no rights in another namespace
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            status = json.loads(run("curl", "-s", *auth, f"localhost:18080/task_status/{task_id}").stdout)
            if status["data"]["status"] in ("success", "failure"):
                break
            time.sleep(5)
        assert status["data"]["status"] == "success", status
        assert set(status["data"]["result"]["final_metrics"]) == {"mAP50", "mAP50-95", "precision", "recall",
                                                                  "f1_score"}
    finally:
        forward.terminate()
        run("kubectl", "-n", namespace, "delete", "yolotrainings", "--all", "--wait=false")
        run("helm", "uninstall", "yolo", "--namespace", namespace)
