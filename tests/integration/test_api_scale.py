"""The Kubernetes backend at cluster scale (issue 13): replicas that agree, a watch that knows it is alive,
a slim index whose history is read on demand, and lists that come a page at a time."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from kubernetes import client

from apiserver import ApiServer
from emulator import ADMIN_TOKEN
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.settings import ApiSettings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"
BODY = {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, "gpus": 1, "name": "shapes"}


def replica(kube: client.ApiClient, **settings: Any) -> tuple[TestClient, KubernetesBackend]:
    backend = KubernetesBackend(ApiSettings(backend="kubernetes", default_namespace="team-a", **settings), kube)
    return TestClient(create_app(ApiSettings(backend="kubernetes"), backend=backend), headers=ADMIN), backend


def test_a_task_created_through_one_replica_answers_on_every_replica_at_once(
        kube: client.ApiClient, api_server: ApiServer) -> None:
    """The bug: each replica has its own index, and the other one answered 404 until its watch caught up."""
    first, _ = replica(kube)
    second, backend = replica(kube, lookup_negative_seconds=60)
    with first, second:
        eventually(lambda: first.get("/readyz").status_code == second.get("/readyz").status_code == 200)
        api_server.emulator.watch_delay = 3.0  # the second replica's watch lags behind (as a busy one does)
        task_id = first.post("/train", json=BODY).json()["data"]["task_id"]
        answer = second.get(f"/task_status/{task_id}")
        assert answer.status_code == 200 and answer.json()["data"]["status"] == "pending", answer.json()
        assert backend.lookups == 1 and second.get(f"/task_status/{task_id}").status_code == 200
        assert backend.lookups == 1  # now in the index: polls cost nothing
        for _ in range(5):  # an unknown id: one lookup, then answered from memory
            assert second.get("/task_status/00000000-0000-4000-8000-000000000000").status_code == 404
        assert backend.lookups == 2
        lists = [params for plural, params in api_server.emulator.listed if plural == P and "labelSelector" in params]
        assert [params["labelSelector"] for params in lists] == [f"yolo-operator.io/task-id={task_id}",
                                                                 "yolo-operator.io/task-id=00000000-0000-4000-8000-000000000000"]


def test_unknown_ids_cannot_flood_the_api_server(kube: client.ApiClient, api_server: ApiServer) -> None:
    http, backend = replica(kube, lookups_per_second=3)
    with http:
        eventually(lambda: http.get("/readyz").status_code == 200)
        codes = [http.get(f"/task_status/00000000-0000-4000-8000-{n:012d}").status_code for n in range(10)]
    assert backend.lookups <= 3 + 3  # at most the rate (and the next second's) reached the API server
    assert set(codes) <= {404, 503} and 503 in codes


def test_a_silent_watch_is_noticed_and_readiness_follows(kube: client.ApiClient, api_server: ApiServer) -> None:
    """The bug: a watch stream frozen without being closed was never noticed, /readyz stayed 200 on a stale index."""
    http, backend = replica(kube, watch_read_timeout=1.0, watch_stale_seconds=2.5)
    api_server.emulator.bookmark_interval = 0.3
    with http:
        eventually(lambda: http.get("/readyz").status_code == 200)
        reconnects = backend.reconnects
        api_server.emulator.frozen = True
        eventually(lambda: http.get("/readyz").status_code == 503, timeout=15)
        assert backend.reconnects > reconnects  # the read timeout dropped the silent stream
        api_server.emulator.frozen = False
        eventually(lambda: http.get("/readyz").status_code == 200, timeout=15)
    watches = [params for plural, params in api_server.emulator.watched if plural == P]
    assert watches and all(params.get("allowWatchBookmarks") == "true" for params in watches)


def test_the_index_lists_a_page_at_a_time_and_reads_histories_on_demand(
        kube: client.ApiClient, api_server: ApiServer) -> None:
    custom = client.CustomObjectsApi(kube)
    for index in range(5):
        custom.create_namespaced_custom_object(G, V, "team-a", P, {
            "metadata": {"name": f"t{index}"}, "spec": {"model": "m.yaml", "data": "d.yaml", "epochs": 100}})
    history = [{"epoch": e, "mAP50": e / 100} for e in range(1, 41)]
    custom.patch_namespaced_custom_object_status(G, V, "team-a", P, "t0", {"status": {
        "stage": "training", "currentEpoch": 40, "totalEpochs": 100, "history": history}})
    http, backend = replica(kube, list_page_size=2)
    with http:
        eventually(lambda: http.get("/readyz").status_code == 200)
        assert len(backend.index) == 5
        pages = [params for plural, params in api_server.emulator.listed if plural == P and "labelSelector" not in params]
        assert len(pages) == 3 and all(params.get("limit") == "2" for params in pages)
        task_id = api_server.emulator.get(P, "team-a", "t0")["metadata"]["uid"]  # type: ignore[index]
        held = backend.index.get(task_id)
        assert held is not None and held.status is not None and held.status.history is None  # slim in memory
        reads = api_server.emulator.reads_of.get(P, 0)
        for _ in range(3):
            metrics = http.get(f"/tasks/{task_id}/metrics").json()["data"]
            assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 41)) and metrics["complete"] is True
        assert api_server.emulator.reads_of[P] - reads == 1  # fetched once, then cached


def test_two_api_processes_on_one_api_server_agree(api_server: ApiServer, tmp_path: Path) -> None:
    """As the chart runs them (api.replicas: 2): two `yolo-api` processes, each with its own index."""
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig", "team-a")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "YOLO_API_AUTH": "kubernetes",
           "YOLO_API_DEFAULT_NAMESPACE": "team-a"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen([sys.executable, "-m", "yolo_api", "--backend", "kubernetes", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        eventually(lambda: all(ready(url) for url in urls), timeout=60, interval=0.2)
        api_server.emulator.watch_delay = 3.0  # both watches lag: only the lookup can answer at once
        created = httpx.post(f"{urls[0]}/train", json=BODY, headers=ADMIN).json()["data"]["task_id"]
        answer = httpx.get(f"{urls[1]}/task_status/{created}", headers=ADMIN)
        assert answer.status_code == 200 and answer.json()["data"]["status"] == "pending", answer.text
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
