"""The whole loop: POST /train → YoloTraining → operator → Job → (stand-in kubelet) trainer → status → API.

The real operator (kopf), the real API (Kubernetes backend) and the real trainer (a few seconds of real
training) run together against the emulated API server; tests/kubelet.py runs each Job's trainer locally.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kopf.testing import KopfRunner
from kubernetes import client, config

from apiserver import ApiServer
from controlplane import ControlPlane
from emulator import ADMIN_TOKEN
from kubelet import LocalKubelet
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]
SPEC_KEYS = {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def stack(api_server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.3")
    with config.new_client_from_config(str(kubeconfig)) as kube, KopfRunner(OPERATOR) as operator, \
            LocalKubelet(kube, kubeconfig, tmp_path) as kubelet:
        settings = ApiSettings(backend="kubernetes", default_namespace="team-a")
        with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as api:
            deadline = time.monotonic() + 20
            while api.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            yield {"api": api, "kube": kube, "kubelet": kubelet, "server": api_server}
    assert operator.exit_code == 0, operator.output


def poll(api: TestClient, task_id: str, timeout: float = 150) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        envelope = api.get(f"/task_status/{task_id}").json()
        seen.append(envelope)
        if envelope["data"]["status"] in ("success", "failure"):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"not finished: {seen[-1]}")


def test_post_train_walks_pending_progress_success(stack: dict[str, Any], dataset3: Path) -> None:
    api: TestClient = stack["api"]
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 3, "imgsz": 64, "batch": 16, "gpus": 0,
            "hyperparameters": {"workers": 0}, "name": "shapes"}
    task_id = api.post("/train", json=body).json()["data"]["task_id"]
    seen = poll(api, task_id)
    states = [e["data"]["status"] for e in seen]
    assert states[0] == "pending" and "progress" in states and states[-1] == "success", states
    first_progress = states.index("progress")
    assert "pending" not in states[first_progress:]  # never back to pending
    epochs = [e["data"]["result"]["current_epoch"] for e in seen if e["data"]["status"] == "progress"]
    assert epochs == sorted(epochs) and max(epochs) <= 3
    result = seen[-1]["data"]["result"]
    assert set(result["final_metrics"]) == SPEC_KEYS and result["weights_path"].endswith("weights/best.pt")
    server: ApiServer = stack["server"]
    [training] = server.emulator.find("yolotrainings", "team-a")
    deadline = time.monotonic() + 20
    while (server.emulator.get("yolotrainings", "team-a", training["metadata"]["name"]) or {}).get(
            "status", {}).get("phase") != "Succeeded":
        assert time.monotonic() < deadline, "the operator did not mark the training Succeeded"
        time.sleep(0.2)
    assert len(server.emulator.find("jobs", "team-a")) == 1


def test_the_trainers_own_failure_ends_the_story(stack: dict[str, Any], tmp_path: Path) -> None:
    """The bug: DatasetInvalid became BackoffLimitExceeded (and stage scheduling) once the Job controller
    passed through FailureTarget with no active pod. The trainer's reason must be the last word."""
    api: TestClient = stack["api"]
    missing = tmp_path / "nowhere" / "data.yaml"
    body = {"model": "yolov8n.yaml", "data": str(missing), "epochs": 3, "imgsz": 64, "gpus": 0, "name": "broken"}
    task_id = api.post("/train", json=body).json()["data"]["task_id"]
    seen = poll(api, task_id, timeout=90)
    final = seen[-1]["data"]
    assert final["status"] == "failure" and final["reason"] == "DatasetInvalid" and str(missing) in final["error"]
    states = [e["data"]["status"] for e in seen]
    assert "pending" not in states[states.index("progress"):]  # the trainer started: never pending again
    server: ApiServer = stack["server"]
    [training] = [t for t in server.emulator.find("yolotrainings", "team-a") if t["metadata"]["uid"] == task_id]
    status = training["status"]
    assert status["phase"] == "Failed" and status["reason"] == "DatasetInvalid" and status["stage"] == "failed"
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "DatasetInvalid")
    eventually(lambda: [c["type"] for c in server.emulator.find("jobs", "team-a")[0]["status"]["conditions"]]
               == ["FailureTarget", "Failed"])  # the verdict was reached as a real Job controller reaches it
    reasons = [e["reason"] for e in server.emulator.find("events", "team-a")
               if e["involvedObject"]["uid"] == task_id]
    assert "DatasetInvalid" in reasons and "BackoffLimitExceeded" not in reasons


def test_a_pod_no_node_accepts_is_pending_and_says_why(stack: dict[str, Any], dataset3: Path) -> None:
    """The bug: the Job's ``active`` (which counts Pending pods) made an unschedulable training Running."""
    api: TestClient = stack["api"]
    body = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": {"name": "nowhere"},
            "spec": {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 1, "imgsz": 64, "gpus": 0,
                     "nodeSelector": {"gpu-type": "h200"}}}
    created = client.CustomObjectsApi(stack["kube"]).create_namespaced_custom_object(
        "yolo-operator.io", "v1alpha1", "team-a", "yolotrainings", body)
    task_id = created["metadata"]["uid"]
    server: ApiServer = stack["server"]

    def reason() -> str | None:
        [training] = [t for t in server.emulator.find("yolotrainings", "team-a") if t["metadata"]["uid"] == task_id]
        return (training.get("status") or {}).get("reason")

    eventually(lambda: reason() == "Unschedulable", timeout=30)
    envelope = api.get(f"/task_status/{task_id}").json()
    assert envelope["data"]["status"] == "pending" and "node selector" in str(envelope["data"])
    [job] = [j for j in server.emulator.find("jobs", "team-a") if j["metadata"]["labels"].get(
        "yolo-operator.io/task-id") == task_id]
    assert job["status"]["active"] == 1 and not job["status"].get("ready")


def test_a_pod_a_quota_refuses_is_pending_and_says_why_until_the_quota_frees(stack: dict[str, Any],
                                                                           dataset3: Path) -> None:
    """The gap: a ResourceQuota refused the trainer pod; the Job controller's FailedCreate Event on the Job
    was the only trace, and the training said "waiting for the trainer pod" until its deadline."""
    api: TestClient = stack["api"]
    server: ApiServer = stack["server"]
    core = client.CoreV1Api(stack["kube"])
    core.create_namespaced_resource_quota("team-a", {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 1, "imgsz": 64, "gpus": 0,
            "hyperparameters": {"workers": 0}, "name": "over-quota"}
    task_id = api.post("/train", json=body).json()["data"]["task_id"]

    def training() -> dict[str, Any]:
        [found] = [t for t in server.emulator.find("yolotrainings", "team-a") if t["metadata"]["uid"] == task_id]
        return found.get("status") or {}

    # (first, for a moment, "status unknown for quota": the quota controller has not counted yet)
    eventually(lambda: "exceeded quota: no-pods" in str(training().get("message")), timeout=30)
    assert training()["reason"] == "FailedCreate" and training()["phase"] == "Pending"
    envelope = api.get(f"/task_status/{task_id}").json()
    assert envelope["data"]["status"] == "pending" and "exceeded quota: no-pods" in envelope["data"]["detail"]
    told = [e for e in server.emulator.find("events", "team-a")
            if e["involvedObject"]["uid"] == task_id and e["reason"] == "FailedCreate"]
    assert told and all(e["type"] == "Warning" for e in told) and len(told) <= 2  # told once per refusal
    assert ("events", {"fieldSelector": "involvedObject.kind=Job,reason=FailedCreate"}) in [
        (plural, {k: v for k, v in params.items() if k == "fieldSelector"}) for plural, params in server.emulator.watched]

    core.delete_namespaced_resource_quota("no-pods", "team-a")  # the Job controller's next try succeeds
    assert poll(api, task_id)[-1]["data"]["status"] == "success"


def test_preempted_trainer_resumes_from_its_checkpoint(stack: dict[str, Any], dataset3: Path) -> None:
    api: TestClient = stack["api"]
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 5, "imgsz": 64, "batch": 16, "gpus": 0,
            "hyperparameters": {"workers": 0}, "name": "preempted"}
    task_id = api.post("/train", json=body).json()["data"]["task_id"]
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while True:
        envelope = api.get(f"/task_status/{task_id}").json()
        seen.append(envelope)
        if envelope["data"]["status"] == "progress" and envelope["data"]["result"]["current_epoch"] >= 2:
            break
        assert time.monotonic() < deadline and envelope["data"]["status"] in ("pending", "progress")
        time.sleep(0.1)
    server: ApiServer = stack["server"]
    job = server.emulator.find("jobs", "team-a")[0]["metadata"]["name"]
    stack["kubelet"].preempt("team-a", job)
    killed_at = seen[-1]["data"]["result"]["current_epoch"]
    seen += poll(api, task_id)
    assert seen[-1]["data"]["status"] == "success", seen[-1]
    epochs = [e["data"]["result"]["current_epoch"] for e in seen if e["data"]["status"] == "progress"]
    assert epochs == sorted(epochs), epochs  # never backwards, across the restart
    resumed = [e["data"]["result"].get("resumed_from_epoch") for e in seen if e["data"]["status"] == "progress"]
    assert any(r is not None and 1 <= r <= killed_at for r in resumed), resumed
    assert stack["kubelet"].started == [job, job]  # one retry, not counted as a failure


def test_api_server_unreachable_for_30s_during_training(stack: dict[str, Any], dataset3: Path) -> None:
    api: TestClient = stack["api"]
    server: ApiServer = stack["server"]
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 5, "imgsz": 64, "batch": 16, "gpus": 0,
            "hyperparameters": {"workers": 0}, "name": "outage"}
    task_id = api.post("/train", json=body).json()["data"]["task_id"]
    deadline = time.monotonic() + 120
    while api.get(f"/task_status/{task_id}").json()["data"].get("result", {}).get("current_epoch", 0) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    server.stop_serving()  # every client sees connection refused: trainer, operator, API watch, kubelet
    during: list[dict[str, Any]] = []
    for _ in range(30):
        during.append(api.get(f"/task_status/{task_id}").json())  # the API keeps answering from its cache
        time.sleep(1.0)
    server.start_serving()
    seen = poll(api, task_id, timeout=180)
    assert all(e["data"]["status"] == "progress" for e in during)
    final = seen[-1]
    assert final["data"]["status"] == "success", final  # the trainer's final status arrived after the outage
    assert set(final["data"]["result"]["final_metrics"]) == SPEC_KEYS
    assert len(server.emulator.find("jobs", "team-a")) == 1
    name = server.emulator.find("yolotrainings", "team-a")[0]["metadata"]["name"]
    deadline = time.monotonic() + 60
    while server.emulator.get("yolotrainings", "team-a", name)["status"].get("phase") != "Succeeded":  # type: ignore[index]
        assert time.monotonic() < deadline, "the operator did not catch up after the outage"
        time.sleep(0.5)


def test_the_stand_in_node_runs_under_a_separate_control_plane(api_server: ApiServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The kubelet stand-in as e2e runs it on a real cluster: it only registers a node, heartbeats and runs
    the pods bound to it; someone else (here tests/controlplane.py, there kube-controller-manager and
    kube-scheduler) creates, binds and counts them."""
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with config.new_client_from_config(str(kubeconfig)) as kube, KopfRunner(OPERATOR) as operator, \
            LocalKubelet(kube, kubeconfig, tmp_path, fake_trainer=True, controllers=False, heartbeat=0.5) as node, \
            ControlPlane(kube):
        settings = ApiSettings(backend="kubernetes", default_namespace="split")
        with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as api:
            body = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": {"name": "split"},
                    "spec": {"model": "yolov8n.yaml", "data": "/d.yaml", "epochs": 2, "gpus": 0, **node.placement()}}
            task_id = client.CustomObjectsApi(kube).create_namespaced_custom_object(  # tainted: only by placement
                "yolo-operator.io", "v1alpha1", "split", "yolotrainings", body)["metadata"]["uid"]
            assert poll(api, task_id, timeout=60)[-1]["data"]["status"] == "success"
        [pod] = api_server.emulator.find("pods", "split")
        assert pod["spec"]["nodeName"] == node.node and node.heartbeats >= 1
        assert api_server.emulator.get("nodes", None, node.node)["status"]["conditions"][0]["type"] == "Ready"  # type: ignore[index]
    assert operator.exit_code == 0, operator.output


def test_200_trainings_submitted_at_once_all_finish(api_server: ApiServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Training is faked by a fast stand-in that still reports through the real reporter and sink."""
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with config.new_client_from_config(str(kubeconfig)) as kube, KopfRunner(OPERATOR) as operator, \
            LocalKubelet(kube, kubeconfig, tmp_path, fake_trainer=True, poll=0.5):
        settings = ApiSettings(backend="kubernetes", default_namespace="load")
        with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as api:
            body = {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 2, "gpus": 0}
            ids = [api.post("/train", json={**body, "name": f"load-{i}"}).json()["data"]["task_id"] for i in range(200)]
            assert len(set(ids)) == 200
            deadline = time.monotonic() + 240
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                for task_id in list(pending):
                    envelope = api.get(f"/task_status/{task_id}").json()
                    if envelope["data"]["status"] in ("success", "failure"):
                        assert envelope["data"]["status"] == "success", envelope
                        assert envelope["data"]["result"]["final_metrics"]["mAP50"] == 0.6
                        pending.discard(task_id)
                time.sleep(0.5)
            assert not pending, f"{len(pending)} trainings did not finish"
    assert operator.exit_code == 0, operator.output
    assert len(api_server.emulator.find("jobs", "load")) == 200
