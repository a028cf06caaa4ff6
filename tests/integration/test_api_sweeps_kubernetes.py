"""/sweeps on the Kubernetes backend against the emulated API server, with the real kopf operator running the
sweeps: POST /sweeps creates the YoloSweep, the operator makes its trials, the API's watch-fed indexes show them
(each trial a task with its own /task_status) and the best, and DELETE /sweeps/{id} cancels through the operator.
The trainers' reports are written into each trial's status as a trainer writes them."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kopf.testing import KopfRunner
from kubernetes import client, config

from apiserver import ApiServer
from emulator import ADMIN_TOKEN
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.settings import ApiSettings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
G, V, P, S = "yolo-operator.io", "v1alpha1", "yolotrainings", "yolosweeps"
NS = "team-a"
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]
TEMPLATE = {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, "gpus": 0}


@pytest.fixture
def kube(api_server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[client.ApiClient]:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # for the operator
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("YOLO_OPERATOR_TRAINER_IMAGE", "registry.local/trainer:test")
    with config.new_client_from_config(str(kubeconfig)) as api:
        yield api


@pytest.fixture
def http(kube: client.ApiClient) -> Iterator[TestClient]:
    settings = ApiSettings(backend="kubernetes", default_namespace=NS, watch_timeout=300)
    with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as test_client:
        eventually(lambda: test_client.get("/readyz").status_code == 200, timeout=10)
        yield test_client


def report(kube: client.ApiClient, name: str, status: dict[str, Any]) -> None:
    """A trainer's status report (a merge patch of the status subresource)."""
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(G, V, NS, P, name, {"status": status})


def epoch(value: float) -> dict[str, Any]:
    return {"stage": "training", "currentEpoch": 1, "totalEpochs": 3, "progress": 33.3,
            "metrics": {"epoch": 1, "mAP50-95": value}, "history": [{"epoch": 1, "mAP50-95": value}]}


def finished(value: float) -> dict[str, Any]:
    return {"stage": "completed", "currentEpoch": 3, "metrics": {"epoch": 3, "mAP50-95": value},
            "history": [{"epoch": 3, "mAP50-95": value}], "weightsPath": "/out/weights/best.pt",
            "finalMetrics": {"mAP50": value, "mAP50-95": value, "precision": 0.5, "recall": 0.5, "f1_score": 0.5}}


def detail(http: TestClient, sweep_id: str) -> dict[str, Any]:
    response = http.get(f"/sweeps/{sweep_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def test_a_sweep_through_the_api_with_the_operator(http: TestClient, kube: client.ApiClient,
                                                   api_server: ApiServer) -> None:
    grid = {"name": "api-grid", "template": TEMPLATE, "algorithm": "grid", "maxTrials": 4, "parallelism": 2,
            "objective": {"metric": "mAP50-95"}, "parameters": {"lr0": {"values": [0.01, 0.02]}}}
    created = http.post("/sweeps", json=grid)
    assert created.status_code == 200, created.text
    sweep_id = created.json()["data"]["sweep_id"]
    [obj] = api_server.emulator.find(S, NS)
    assert obj["metadata"]["uid"] == sweep_id and obj["spec"]["maxTrials"] == 4 and obj["spec"]["template"]["gpus"] == 0
    assert http.get(f"/sweeps/{sweep_id}").json()["data"]["state"] == "pending"  # no wait for the watch
    taken = http.post("/sweeps", json=grid)
    assert taken.status_code == 409 and taken.json()["data"]["name"] == "api-grid"
    stop = {"template": TEMPLATE, "algorithm": "random", "maxTrials": 3, "objective": {"metric": "mAP50-95"},
            "parameters": {"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}}}
    stop_id = http.post("/sweeps", json=stop).json()["data"]["sweep_id"]  # a generated name: sweep-xxxxx

    with KopfRunner(OPERATOR):
        trials = eventually(lambda: len(detail(http, sweep_id)["trials"]) == 2 and detail(http, sweep_id)["trials"],
                            timeout=30)
        assert sorted(t["name"] for t in trials) == ["api-grid-000", "api-grid-001"]
        by_name = {t["name"]: t["task_id"] for t in trials}
        for t in trials:  # every trial is a task of its own
            answer = http.get(f"/task_status/{t['task_id']}")
            assert answer.status_code == 200 and answer.json()["data"]["status"] == "pending"
        report(kube, "api-grid-000", epoch(0.2))
        eventually(lambda: http.get(f"/task_status/{by_name['api-grid-000']}").json()["data"]["status"] == "progress")
        running = eventually(lambda: detail(http, sweep_id)["trials"][0]["state"] == "running"
                             and detail(http, sweep_id))
        row = running["trials"][0]
        assert row.pop("reason") in (None, "waiting for the trainer pod")  # the operator's account of its pod
        assert row == {"trial": 0, "name": "api-grid-000", "task_id": by_name["api-grid-000"], "state": "running",
                       "objective": 0.2, "epoch": 1, "parameters": {"lr0": 0.01}}
        report(kube, "api-grid-000", finished(0.3))
        report(kube, "api-grid-001", finished(0.7))
        done = eventually(lambda: detail(http, sweep_id)["state"] == "succeeded" and detail(http, sweep_id), timeout=30)
        assert [(t["name"], t["state"], t["objective"]) for t in done["trials"]] == [
            ("api-grid-001", "succeeded", 0.7), ("api-grid-000", "succeeded", 0.3)]  # sorted by objective
        assert done["best"]["name"] == "api-grid-001" and done["best"]["taskId"] == by_name["api-grid-001"]
        assert done["done"] == "2/2" and done["can_cancel"] is False
        assert http.get(f"/task_status/{by_name['api-grid-001']}").json()["data"]["status"] == "success"

        eventually(lambda: len(detail(http, stop_id)["trials"]) == 1, timeout=30)
        cancelled = http.delete(f"/sweeps/{stop_id}", headers={"Accept-Language": "en"})
        assert cancelled.status_code == 202 and cancelled.json()["message"] == "Sweep cancel requested"
        [marked] = [s for s in api_server.emulator.find(S, NS) if s["metadata"]["uid"] == stop_id]
        assert marked["spec"]["suspend"] is True and marked["metadata"]["annotations"]["yolo-operator.io/cancel"] == "true"
        over = eventually(lambda: detail(http, stop_id)["state"] == "failed" and detail(http, stop_id), timeout=30)
        assert over["reason"] == "Cancelled" and over["cancelled"] is True
        assert [t["state"] for t in over["trials"]] == ["failed"]
        trial_status = http.get(f"/task_status/{over['trials'][0]['task_id']}")
        assert trial_status.status_code == 500 and trial_status.json()["data"]["error"] == "cancelled"
        again = http.delete(f"/sweeps/{stop_id}", headers={"Accept-Language": "en"})
        assert again.status_code == 200 and again.json()["message"] == "Sweep cancelled"

    listed = http.get("/sweeps").json()["data"]["items"]  # newest first (the same second: by name, sweep-xxxxx first)
    assert [item["sweep_id"] for item in listed] == [stop_id, sweep_id]
    assert [item["sweep_id"] for item in http.get("/sweeps", params={"state": "succeeded"}).json()["data"]["items"]] \
        == [sweep_id]


def test_not_ready_until_the_sweeps_are_listed(kube: client.ApiClient, api_server: ApiServer) -> None:
    api_server.emulator.fail(3, 500, method="GET", plural=S)
    settings = ApiSettings(backend="kubernetes", watch_timeout=2)
    with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as test_client:
        assert test_client.get("/readyz").status_code == 503
        eventually(lambda: test_client.get("/readyz").status_code == 200, timeout=30)
