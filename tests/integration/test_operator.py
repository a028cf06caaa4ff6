"""The real kopf operator against the emulated API server: Jobs, RBAC, status, Events, restarts, deletion."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kopf.testing import KopfRunner
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from apiserver import ApiServer
from waiting import eventually

G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"
NS = "team-a"
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]


@pytest.fixture
def kube(api_server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[client.ApiClient]:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("YOLO_OPERATOR_TRAINER_IMAGE", "registry.local/trainer:test")
    with config.new_client_from_config(str(kubeconfig)) as api:
        yield api


def create(kube: client.ApiClient, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": name},
            "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, NS, P, body))


def status_of(api_server: ApiServer, name: str) -> dict[str, Any]:
    obj = api_server.emulator.get(P, NS, name)
    return dict((obj or {}).get("status") or {})


def events_for(api_server: ApiServer, name: str) -> list[str]:
    return [e.get("reason", "") for e in api_server.emulator.find("events", NS)
            if (e.get("involvedObject") or {}).get("name") == name]


def add_pod(kube: client.ApiClient, training: dict[str, Any], pod_status: dict[str, Any]) -> None:
    """Stand in for the Job controller and the scheduler: a trainer pod with the given status."""
    meta = training["metadata"]
    labels = {"yolo-operator.io/training": meta["name"], "yolo-operator.io/task-id": meta["uid"],
              "app.kubernetes.io/managed-by": "yolo-training-operator"}
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(NS, {"metadata": {"name": f"{meta['name']}-train-x1", "labels": labels},
                                    "spec": {"containers": [{"name": "trainer", "image": "registry.local/trainer:test"}]}})
    core.patch_namespaced_pod_status(f"{meta['name']}-train-x1", NS, {"status": pod_status})


def test_create_builds_one_job_rbac_pending_status_and_an_event(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "shapes", gpus=1)
        eventually(lambda: status_of(api_server, "shapes").get("jobName"))
        time.sleep(1.0)  # let any duplicate reconciliation happen
    assert runner.exit_code == 0, runner.output
    [job] = api_server.emulator.find("jobs", NS)
    assert job["metadata"]["name"] == "shapes-train"
    assert job["metadata"]["ownerReferences"][0]["uid"] == training["metadata"]["uid"]
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.local/trainer:test"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for plural in ("serviceaccounts", "roles", "rolebindings"):
        assert [o["metadata"]["name"] for o in api_server.emulator.find(plural, NS)] == ["shapes-train"]
    status = status_of(api_server, "shapes")
    assert status["phase"] == "Pending" and status["stage"] == "scheduling" and "kopf" not in status
    assert "JobCreated" in events_for(api_server, "shapes")


def test_pod_and_job_fate_is_mirrored_into_status(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "fate")
        eventually(lambda: api_server.emulator.find("jobs", NS))
        add_pod(kube, training, {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]})
        eventually(lambda: status_of(api_server, "fate").get("reason") == "Unschedulable")
        assert "Insufficient nvidia.com/gpu" in status_of(api_server, "fate")["message"]
        client.BatchV1Api(kube).patch_namespaced_job_status("fate-train", NS, {"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}]}})
        eventually(lambda: status_of(api_server, "fate").get("phase") == "Failed")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "fate")
    assert status["reason"] == "DeadlineExceeded" and status["completionTime"]
    assert {"Unschedulable", "DeadlineExceeded"} <= set(events_for(api_server, "fate"))


def test_operator_restart_creates_no_second_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR):
        create(kube, "restart")
        eventually(lambda: status_of(api_server, "restart").get("jobName"))
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(
        G, V, NS, P, "restart", {"status": {"stage": "training", "currentEpoch": 2}})  # the trainer went on
    with KopfRunner(OPERATOR) as runner:
        time.sleep(2.0)
    assert runner.exit_code == 0, runner.output
    assert len(api_server.emulator.find("jobs", NS)) == 1
    job_creates = [w for w in api_server.emulator.writes if w.plural == "jobs" and w.method == "POST"]
    assert [w.status for w in job_creates] in ([201], [201, 409])
    status = status_of(api_server, "restart")
    assert status["currentEpoch"] == 2 and status["phase"] == "Pending"


def test_invalid_spec_fails_permanently_without_a_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        create(kube, "bad", hyperparameters={"project": "/etc"})
        create(kube, "worse", gpus=1, device="cpu")
        eventually(lambda: status_of(api_server, "bad").get("phase") == status_of(api_server, "worse").get("phase")
                   == "Failed")
        time.sleep(1.0)
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "bad")
    assert status["reason"] == "InvalidSpec" and "trainer chooses where outputs are written" in status["error"]
    assert "set gpus to 0" in status_of(api_server, "worse")["error"]
    assert api_server.emulator.find("jobs", NS) == []
    assert "InvalidSpec" in events_for(api_server, "bad")


def test_deleting_the_training_removes_what_it_owns(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        create(kube, "gone")
        eventually(lambda: api_server.emulator.find("rolebindings", NS))
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, NS, P, "gone")
        eventually(lambda: api_server.emulator.get(P, NS, "gone") is None)
    assert runner.exit_code == 0, runner.output
    for plural in ("jobs", "serviceaccounts", "roles", "rolebindings"):
        assert api_server.emulator.find(plural, NS) == [], plural


def test_suspend_resume_and_cancel_act_on_the_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    custom, batch = client.CustomObjectsApi(kube), client.BatchV1Api(kube)
    with KopfRunner(OPERATOR) as runner:
        create(kube, "pause")
        eventually(lambda: api_server.emulator.find("jobs", NS))
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"suspend": True}})
        eventually(lambda: batch.read_namespaced_job("pause-train", NS).spec.suspend is True)
        eventually(lambda: status_of(api_server, "pause").get("stage") == "queued")
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"suspend": False}})
        eventually(lambda: batch.read_namespaced_job("pause-train", NS).spec.suspend is False)
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"epochs": 50}})
        eventually(lambda: "SpecChangeIgnored" in events_for(api_server, "pause"))
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {
            "metadata": {"annotations": {"yolo-operator.io/cancel": "true"}}, "spec": {"suspend": True}})
        eventually(lambda: status_of(api_server, "pause").get("reason") == "Cancelled")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "pause")
    assert status["phase"] == "Failed" and status["error"] == "cancelled"
    assert batch.read_namespaced_job("pause-train", NS).spec.suspend is True
    assert {"Suspended", "Resumed", "Cancelled"} <= set(events_for(api_server, "pause"))


def test_operator_metrics_are_served_and_move(kube: client.ApiClient, api_server: ApiServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("YOLO_OPERATOR_METRICS_PORT", str(port))

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    with KopfRunner(OPERATOR) as runner:
        api_server.emulator.fail(1, 500, method="POST", plural="jobs")  # the first Job create is refused
        create(kube, "metered", gpus=2)
        eventually(lambda: status_of(api_server, "metered").get("jobName"))
        eventually(lambda: scrape().get(("yolo_operator_trainings", (("phase", "Pending"), ("reason", "")))) == 1)
        samples = scrape()
        assert samples[("yolo_operator_gpus_requested", (("phase", "Pending"),))] == 2
        assert samples[("yolo_operator_job_creation_failures_total", (("reason", "500"),))] >= 1
        assert samples[("yolo_operator_reconcile_duration_seconds_count", (("handler", "reconcile"),))] >= 2
        api_server.call(api_server.emulator.patch_status(P, NS, "metered", {"phase": "Running"}))
        eventually(lambda: scrape().get(("yolo_operator_trainings", (("phase", "Running"), ("reason", "")))) == 1)
    assert runner.exit_code == 0, runner.output
