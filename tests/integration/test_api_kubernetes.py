"""The Kubernetes backend against the emulated API server: create via POST, a watch-fed index, recovery."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
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


@pytest.fixture
def backend(kube: client.ApiClient) -> KubernetesBackend:
    return KubernetesBackend(ApiSettings(backend="kubernetes", default_namespace="team-a", watch_timeout=300), kube)


@pytest.fixture
def http(backend: KubernetesBackend) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(backend="kubernetes"), backend=backend), headers=ADMIN) as test_client:
        eventually(lambda: test_client.get("/readyz").status_code == 200, timeout=10)
        yield test_client


def patch_status(kube: client.ApiClient, name: str, status: dict[str, Any], namespace: str = "team-a") -> None:
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(G, V, namespace, P, name, {"status": status})


def test_post_creates_a_resource_whose_uid_is_the_task_id(http: TestClient, api_server: ApiServer) -> None:
    response = http.post("/train", json=BODY)
    assert response.status_code == 200
    task_id = response.json()["data"]["task_id"]
    [obj] = api_server.emulator.find(P, "team-a")
    assert obj["metadata"]["uid"] == task_id and obj["metadata"]["name"].startswith("shapes-")
    assert obj["spec"]["model"] == "yolov8n.yaml" and obj["spec"]["gpus"] == 1
    assert http.get(f"/task_status/{task_id}").json()["data"]["status"] == "pending"  # no wait for the watch


def test_index_follows_watch_events_without_api_calls_per_poll(
    http: TestClient, kube: client.ApiClient, api_server: ApiServer
) -> None:
    task_id = http.post("/train", json=BODY).json()["data"]["task_id"]
    name = api_server.emulator.find(P)[0]["metadata"]["name"]
    patch_status(kube, name, {"phase": "Running", "stage": "training", "currentEpoch": 2, "totalEpochs": 3,
                              "progress": 66.7})
    eventually(lambda: http.get(f"/task_status/{task_id}").json()["data"]["status"] == "progress")
    requests_before = len(api_server.emulator.writes), _reads(api_server)
    for _ in range(50):
        result = http.get(f"/task_status/{task_id}").json()["data"]["result"]
        assert result["progress"] == "66.7%" and result["current_epoch"] == 2
    assert (len(api_server.emulator.writes), _reads(api_server)) == requests_before

    final = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
    patch_status(kube, name, {"phase": "Succeeded", "stage": "completed", "finalMetrics": final,
                              "weightsPath": "/out/w/best.pt", "projectPath": "/out"})
    eventually(lambda: http.get(f"/task_status/{task_id}").json()["data"]["status"] == "success")
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, "team-a", P, name)
    eventually(lambda: http.get(f"/task_status/{task_id}").status_code == 404)


def _reads(api_server: ApiServer) -> int:
    return api_server.emulator.reads


def test_cache_recovers_after_the_api_server_was_unreachable(
    http: TestClient, kube: client.ApiClient, api_server: ApiServer, backend: KubernetesBackend
) -> None:
    task_id = http.post("/train", json=BODY).json()["data"]["task_id"]
    name = api_server.emulator.find(P)[0]["metadata"]["name"]
    assert http.get(f"/task_status/{task_id}").status_code == 200  # a poller's first answer (and its review)
    api_server.stop_serving()
    time.sleep(1.0)
    assert http.get(f"/task_status/{task_id}").status_code == 200  # served from the cache meanwhile
    api_server.start_serving()
    patch_status(kube, name, {"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 3})
    eventually(lambda: http.get(f"/task_status/{task_id}").json()["data"]["status"] == "progress", timeout=40)


def test_relist_after_410_gone(http: TestClient, kube: client.ApiClient, api_server: ApiServer,
                               backend: KubernetesBackend) -> None:
    task_id = http.post("/train", json=BODY).json()["data"]["task_id"]
    name = api_server.emulator.find(P)[0]["metadata"]["name"]
    relists = backend.index.relists
    api_server.stop_serving()
    # a change the watch misses while disconnected, then the history is compacted: resuming gets 410 Gone
    missed = {"phase": "Failed", "reason": "OOMKilled", "message": "killed"}
    api_server.call(api_server.emulator.patch_status(P, "team-a", name, missed))
    api_server.emulator.compact()
    api_server.start_serving()
    eventually(lambda: http.get(f"/task_status/{task_id}").status_code == 500, timeout=40)
    assert backend.index.relists > relists


def test_not_ready_until_the_first_list(kube: client.ApiClient, api_server: ApiServer) -> None:
    api_server.emulator.fail(3, 500, method="GET", plural=P)
    backend = KubernetesBackend(ApiSettings(backend="kubernetes", watch_timeout=2), kube)
    with TestClient(create_app(ApiSettings(backend="kubernetes"), backend=backend), headers=ADMIN) as test_client:
        assert test_client.get("/readyz").status_code == 503
        eventually(lambda: test_client.get("/readyz").status_code == 200, timeout=30)


def test_namespace_restriction(kube: client.ApiClient) -> None:
    backend = KubernetesBackend(ApiSettings(backend="kubernetes", namespace="team-a"), kube)
    with TestClient(create_app(ApiSettings(backend="kubernetes"), backend=backend), headers=ADMIN) as test_client:
        response = test_client.post("/train", json={**BODY, "namespace": "team-b"})
        assert response.status_code == 422 and "team-a" in str(response.json()["data"]["errors"])


def test_cancel_marks_and_suspends(http: TestClient, api_server: ApiServer) -> None:
    task_id = http.post("/train", json=BODY).json()["data"]["task_id"]
    response = http.delete(f"/tasks/{task_id}")
    assert response.status_code == 202 and response.json()["message"] == "已请求取消任务"
    [obj] = api_server.emulator.find(P)
    assert obj["spec"]["suspend"] is True and obj["metadata"]["annotations"]["yolo-operator.io/cancel"] == "true"
    # the verdict is the operator's (none runs here): a cancel asked for is not yet a failure, since the
    # trainer may have stored its weights already (then it is a success)
    answered = http.get(f"/task_status/{task_id}")
    assert answered.status_code == 200 and answered.json()["data"]["status"] == "pending"


def test_default_storage_applies_when_the_request_names_none(kube: client.ApiClient, api_server: ApiServer) -> None:
    default = {"volumes": [{"name": "data", "claimName": "datasets", "mountPath": "/data", "readOnly": False}],
               "outputVolume": "data"}
    mine = {"volumes": [{"name": "scratch", "claimName": "mine", "mountPath": "/scratch", "readOnly": True}]}
    settings = ApiSettings(backend="kubernetes", default_namespace="team-a", default_storage=default)
    with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)), headers=ADMIN) as http:
        assert http.post("/train", json={**BODY, "name": "plain"}).status_code == 200
        assert http.post("/train", json={**BODY, "name": "own", "storage": mine}).status_code == 200
        bad = http.post("/train", json={**BODY, "storage": {"volumes": [], "outputVolume": "nope"}})
        assert bad.status_code == 422 and "outputVolume" in str(bad.json()["data"]["errors"])
    stored = {o["metadata"]["name"].rsplit("-", 1)[0]: o["spec"]["storage"] for o in api_server.emulator.find(P)}
    assert stored == {"plain": default, "own": mine}


def test_defaults_logs_and_the_list_stream_on_a_cluster(http: TestClient, kube: client.ApiClient,
                                                        api_server: ApiServer) -> None:
    body = {key: value for key, value in BODY.items() if key != "gpus"}
    task_id = http.post("/train", json=body).json()["data"]["task_id"]
    assert api_server.emulator.find(P, "team-a")[0]["spec"]["gpus"] == 1  # a cluster's default: one GPU
    name = api_server.emulator.find(P)[0]["metadata"]["name"]
    patch_status(kube, name, {"jobName": f"{name}-job", "phase": "Running", "stage": "training"})
    eventually(lambda: http.get(f"/tasks/{task_id}").json()["data"]["state"] == "progress", timeout=10)
    logs = http.get(f"/tasks/{task_id}/logs", headers={"Accept-Language": "en"})
    assert logs.status_code == 501 and f"kubectl logs -n team-a job/{name}-job" in logs.json()["detail"]
    assert logs.json()["message"] == "Not served by this backend"
    versions = [record.version for record in http.app.state.backend.changed_since(0)]  # type: ignore[attr-defined]
    assert versions and all(v > 0 for v in versions)  # resourceVersions: the list stream's cursor


def test_a_reaped_training_answers_that_it_was_deleted_on_every_replica(http: TestClient, kube: client.ApiClient,
                                                                          api_server: ApiServer) -> None:
    """Retention (spec.ttlSecondsAfterFinished): once the operator deletes a finished training, each replica
    that watched the deletion answers 404 saying it finished and was deleted, not that it never existed."""
    other = KubernetesBackend(ApiSettings(backend="kubernetes", default_namespace="team-a"), kube)
    with TestClient(create_app(ApiSettings(backend="kubernetes"), backend=other), headers=ADMIN) as second:
        eventually(lambda: second.get("/readyz").status_code == 200, timeout=10)
        task_id = http.post("/train", json={**BODY, "ttl_seconds_after_finished": 0}).json()["data"]["task_id"]
        running = http.post("/train", json={**BODY, "name": "running"}).json()["data"]["task_id"]
        by_uid = {o["metadata"]["uid"]: o["metadata"]["name"] for o in api_server.emulator.find(P)}
        patch_status(kube, by_uid[task_id], {"phase": "Failed", "reason": "Cancelled", "message": "cancelled",
                                             "completionTime": "2026-01-01T00:00:00Z"})
        eventually(lambda: second.get(f"/task_status/{task_id}").json()["data"]["status"] == "failure")
        custom = client.CustomObjectsApi(kube)
        for name in by_uid.values():
            custom.delete_namespaced_custom_object(G, V, "team-a", P, name)
        for replica in (http, second):
            answer = eventually(lambda replica=replica: replica.get(f"/task_status/{task_id}").status_code == 404
                                and replica.get(f"/task_status/{task_id}").json())
            assert answer["message"] == "任务已结束并已被清理" and answer["data"]["reason"] == "Reaped"
            assert "finished at 2026-01-01T00:00:00Z" in answer["detail"] and "artifacts" in answer["detail"]
            gone = eventually(lambda replica=replica: replica.get(f"/task_status/{running}").status_code == 404
                              and replica.get(f"/task_status/{running}").json())
            assert gone["message"] == "任务不存在"  # deleted before it finished: not reaped, simply unknown
