"""The real kopf operator runs a YoloSweep against the emulated API server (the real control plane runs the same
scenarios with real trainers in tests/e2e/test_sweeps.py): trials are owned, labelled, named by number, never
more than ``parallelism`` at once; the sweep's state is rebuilt from its trials after a restart; a suspended
sweep cancels its running trials; a sweep whose trials the API server refuses fails saying why.

The trainers' reports are written into each trial's status as a trainer writes them.
"""

from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from apiserver import ApiServer
from waiting import eventually

G, V, P, S = "yolo-operator.io", "v1alpha1", "yolotrainings", "yolosweeps"
NS = "team-a"
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]


@pytest.fixture
def kube(operator_kube: client.ApiClient) -> client.ApiClient:
    """The client of the emulated API server with the environment the in-process operator reads."""
    return operator_kube


def create_sweep(kube: client.ApiClient, name: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloSweep", "metadata": {"name": name},
            "spec": {"template": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, "gpus": 0},
                     "objective": {"metric": "mAP50-95"}, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, NS, S, body))


def trials(api_server: ApiServer, sweep: str) -> list[dict[str, Any]]:
    found = [t for t in api_server.emulator.find(P, NS)
             if (t["metadata"].get("labels") or {}).get("yolo-operator.io/sweep") == sweep]
    return sorted(found, key=lambda t: t["metadata"]["name"])


def sweep_status(api_server: ApiServer, name: str) -> dict[str, Any]:
    return dict((api_server.emulator.get(S, NS, name) or {}).get("status") or {})


def finish(kube: client.ApiClient, name: str, value: float) -> None:
    """The trainer's final report."""
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(G, V, NS, P, name, {"status": {
        "stage": "completed", "currentEpoch": 3, "metrics": {"epoch": 3, "mAP50-95": value},
        "history": [{"epoch": 3, "mAP50-95": value}],
        "finalMetrics": {"mAP50": value, "mAP50-95": value, "precision": 0.5, "recall": 0.5, "f1_score": 0.5}}})


def test_a_grid_sweep_runs_its_trials_in_order_and_names_the_best(kube: client.ApiClient,
                                                                  api_server: ApiServer) -> None:
    sweep = create_sweep(kube, "grid", algorithm="grid", maxTrials=4, parallelism=2,
                         parameters={"lr0": {"values": [0.01, 0.02]}, "imgsz": {"values": [64, 96]}})
    with KopfRunner(OPERATOR):
        made = eventually(lambda: len(trials(api_server, "grid")) == 2 and trials(api_server, "grid"), timeout=30)
        for trial in made:
            assert trial["metadata"]["ownerReferences"][0]["uid"] == sweep["metadata"]["uid"]
            assert trial["metadata"]["labels"]["yolo-operator.io/trial"] in ("0", "1")
        assert [t["spec"]["imgsz"] for t in made] == [64, 64]
        assert [t["spec"]["hyperparameters"]["lr0"] for t in made] == [0.01, 0.02]  # sorted names: imgsz, lr0
        for number, value in enumerate([0.3, 0.7]):
            finish(kube, f"grid-{number:03d}", value)
        eventually(lambda: len(trials(api_server, "grid")) == 4, timeout=30)
        finish(kube, "grid-002", 0.5)
        finish(kube, "grid-003", 0.1)
        final = eventually(lambda: sweep_status(api_server, "grid").get("phase") == "Succeeded"
                           and sweep_status(api_server, "grid"), timeout=30)
    assert final["best"]["name"] == "grid-001" and final["best"]["parameters"] == {"imgsz": 64, "lr0": 0.02}
    assert final["counts"]["succeeded"] == 4 and final["done"] == "4/4"
    assert {c["type"]: c["status"] for c in final["conditions"]}["Succeeded"] == "True"


def test_a_restarted_operator_rebuilds_the_sweep_from_its_trials(kube: client.ApiClient,
                                                                api_server: ApiServer) -> None:
    create_sweep(kube, "again", algorithm="random", maxTrials=3, parallelism=1,
                 parameters={"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}})
    with KopfRunner(OPERATOR):
        first = eventually(lambda: trials(api_server, "again"), timeout=30)[0]
    finish(kube, first["metadata"]["name"], 0.4)
    with KopfRunner(OPERATOR):
        eventually(lambda: len(trials(api_server, "again")) == 2, timeout=30)
        finish(kube, "again-001", 0.2)
        eventually(lambda: len(trials(api_server, "again")) == 3, timeout=30)
    names = [t["metadata"]["name"] for t in trials(api_server, "again")]
    assert names == ["again-000", "again-001", "again-002"]
    assert first["metadata"]["uid"] == trials(api_server, "again")[0]["metadata"]["uid"]  # never made again


def test_suspending_a_sweep_cancels_its_running_trials(kube: client.ApiClient, api_server: ApiServer) -> None:
    create_sweep(kube, "hold", algorithm="grid", maxTrials=2, parallelism=2,
                 parameters={"lr0": {"values": [0.01, 0.02]}})
    with KopfRunner(OPERATOR):
        eventually(lambda: len(trials(api_server, "hold")) == 2, timeout=30)
        client.CustomObjectsApi(kube).patch_namespaced_custom_object(G, V, NS, S, "hold", {"spec": {"suspend": True}})
        cancelled = eventually(lambda: all((t.get("status") or {}).get("reason") == "Cancelled"
                                           for t in trials(api_server, "hold")) and trials(api_server, "hold"),
                               timeout=30)
        assert all(t["status"]["phase"] == "Failed" for t in cancelled)
        eventually(lambda: sweep_status(api_server, "hold").get("phase") == "Failed", timeout=30)


def test_a_sweep_whose_trials_are_refused_fails_saying_why(kube: client.ApiClient, api_server: ApiServer) -> None:
    """The sweep's own spec is valid, but a trial's name is already held by another training."""
    client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, NS, P, {
        "apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": "taken-000"},
        "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "gpus": 0}})
    create_sweep(kube, "taken", algorithm="grid", maxTrials=1, parameters={"lr0": {"values": [0.01]}})
    with KopfRunner(OPERATOR):
        final = eventually(lambda: sweep_status(api_server, "taken").get("phase") == "Failed"
                           and sweep_status(api_server, "taken"), timeout=30)
    assert final["reason"] == "InvalidSpec" and "taken-000 exists and is not a trial of this sweep" in final["message"]
