"""Kubernetes-mode authentication against the emulated API server: TokenReview, then SubjectAccessReview.

The emulator's review endpoints are a documented miniature of the cluster's (tests/emulator.py): tokens map
to users and groups, grants give verbs on yolotrainings per namespace. Users get exactly their grants.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kubernetes import config

from apiserver import ApiServer
from emulator import ADMIN_TOKEN, Grant
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.settings import ApiSettings

BODY = {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, "gpus": 1}
TOKENS = {"alice": "alice-token-aaaaaaaaaaaaaaaaaaaa", "bob": "bob-token-bbbbbbbbbbbbbbbbbbbbbbb",
          "prometheus": "prom-token-pppppppppppppppppppp"}


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN if who == 'admin' else TOKENS[who]}"}


@pytest.fixture
def http(api_server: ApiServer, tmp_path: Path) -> Iterator[TestClient]:
    emulator = api_server.emulator
    for user, token in TOKENS.items():
        emulator.tokens[token] = (user, ["system:authenticated"])
    emulator.grants += [Grant("alice", ("get", "list", "create", "delete"), "team-a"),
                        Grant("bob", ("get", "list"), "team-b"),
                        Grant("prometheus", ("get",), resource="/metrics")]
    with config.new_client_from_config(str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))) as kube:
        settings = ApiSettings(backend="kubernetes", default_namespace="team-a")
        with TestClient(create_app(settings, KubernetesBackend(settings, kube))) as test_client:
            eventually(lambda: test_client.get("/readyz").status_code == 200, timeout=10)
            yield test_client


def submit(http: TestClient, who: str, namespace: str) -> str:
    response = http.post("/train", json={**BODY, "namespace": namespace}, headers=bearer(who))
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def test_users_get_exactly_their_kubectl_rights(http: TestClient, api_server: ApiServer) -> None:
    mine = submit(http, "alice", "team-a")
    theirs = submit(http, "admin", "team-b")
    eventually(lambda: http.get(f"/task_status/{theirs}", headers=bearer("admin")).status_code == 200)
    assert http.get(f"/task_status/{mine}", headers=bearer("alice")).status_code == 200
    assert http.get(f"/task_status/{theirs}", headers=bearer("alice")).status_code == 404
    assert [t["task_id"] for t in http.get("/tasks", headers=bearer("alice")).json()["data"]["items"]] == [mine]
    assert [t["task_id"] for t in http.get("/tasks", headers=bearer("bob")).json()["data"]["items"]] == [theirs]
    assert http.get("/tasks", headers=bearer("admin")).json()["data"]["total"] == 2
    assert http.post("/train", json={**BODY, "namespace": "team-b"}, headers=bearer("alice")).status_code == 403
    assert http.delete(f"/tasks/{theirs}", headers=bearer("bob")).status_code == 403  # may read, not cancel
    assert http.delete(f"/tasks/{theirs}", headers=bearer("alice")).status_code == 404
    assert http.delete(f"/tasks/{mine}", headers=bearer("alice")).status_code == 202  # the operator concludes
    assert http.get("/task_status/x", headers={"Authorization": "Bearer not-a-real-token-000000"}).status_code == 401
    assert http.get("/metrics", headers=bearer("alice")).status_code == 403
    assert http.get("/metrics", headers=bearer("prometheus")).status_code == 200


def test_reviews_are_cached_for_pollers(http: TestClient, api_server: ApiServer) -> None:
    task = submit(http, "alice", "team-a")
    before = len(api_server.emulator.reviews)
    for _ in range(100):
        assert http.get(f"/task_status/{task}", headers=bearer("alice")).status_code == 200
    assert len(api_server.emulator.reviews) - before <= 1  # at most the first `get` decision


def test_review_failures_are_503_and_never_let_anyone_in(http: TestClient, api_server: ApiServer) -> None:
    api_server.emulator.fail(20, 500, plural="tokenreviews")
    response = http.get("/tasks", headers=bearer("bob"))
    assert response.status_code == 503 and response.json()["code"] == 1


def test_no_token_reaches_logs_status_or_errors(http: TestClient, api_server: ApiServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    task = submit(http, "alice", "team-a")
    bodies = [http.get(f"/task_status/{task}", headers=bearer("alice")).text,
              http.get("/tasks", headers=bearer("alice")).text,
              http.get(f"/tasks/{task}/metrics", headers=bearer("alice")).text,
              http.get("/metrics", headers=bearer("prometheus")).text,
              http.post("/train", json={**BODY, "namespace": "team-b"}, headers=bearer("alice")).text,
              http.get("/tasks", headers={"Authorization": "Bearer forged-token-xxxxxxxxxxxxxxxxxx"}).text]
    api_server.emulator.fail(5, 500, plural="tokenreviews")
    bodies.append(http.get("/tasks", headers=bearer("bob")).text)  # the failing review is logged
    stored = str(api_server.emulator.find("yolotrainings"))
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "TokenReview failed" in logged
    for secret in [*TOKENS.values(), ADMIN_TOKEN, "forged-token-xxxxxxxxxxxxxxxxxx"]:
        for where, text in (("log", logged), ("stored objects", stored), *(("response", b) for b in bodies)):
            assert secret not in text, f"a token leaked into a {where}"
