"""Authentication and per-namespace authorization of every route, with the static token and a rule table."""

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.auth import Principal, StaticToken, TtlCache, load_or_create_token
from yolo_api.auth_kubernetes import access_review
from yolo_api.settings import ApiSettings

ROUTES = [("GET", "/task_status/{id}"), ("GET", "/task_status/{id}/events"), ("GET", "/tasks"),
          ("GET", "/tasks/{id}/metrics"), ("DELETE", "/tasks/{id}"), ("POST", "/train"), ("GET", "/metrics")]
BODY = {"model": "yolov8n.yaml", "data": "d.yaml", "epochs": 3, "gpus": 0}


class RuleTable:
    """An authorizer from a table {token: {namespace: verbs}} ("*" namespace: every namespace)."""

    def __init__(self, rules: dict[str, dict[str, set[str]]]) -> None:
        self.rules = rules

    async def authenticate(self, token: str | None) -> Principal | None:
        return Principal(name=token, key=token) if token in self.rules else None

    async def allowed(self, who: Principal, action: str, namespace: str | None) -> bool:
        grants = self.rules[who.key]
        return action in grants.get("*", set()) or (namespace is not None and action in grants.get(namespace, set()))


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


def test_every_data_route_needs_a_token(backend: MemoryBackend) -> None:
    task = backend.put(None)
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)) as http:
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": TOKEN}):
                response = http.request(method, path.format(id=task), headers=headers,
                                        json=BODY if method == "POST" else None)
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.json()["code"] == 1 and TOKEN not in response.text
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert http.get(path).status_code == 200
        assert http.get(f"/task_status/{task}", headers=AUTH).status_code == 200


def test_auth_is_off_only_when_asked(backend: MemoryBackend, tmp_path: Path) -> None:
    task = backend.put(None)
    with TestClient(create_app(ApiSettings(backend="local", auth="none"), backend)) as http:
        assert http.get(f"/task_status/{task}").status_code == 200
    # the local default generates a token (owner-only file) instead of running open
    with TestClient(create_app(ApiSettings(backend="local", state_dir=tmp_path), backend)) as http:
        assert http.get(f"/task_status/{task}").status_code == 401
        token = (tmp_path / "api-token").read_text().strip()
        assert http.get(f"/task_status/{task}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert stat.S_IMODE((tmp_path / "api-token").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path / "api-token") == token  # the same token after a restart


def test_static_token_rules() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        StaticToken("short")
    assert ApiSettings(backend="kubernetes").auth_mode() == "kubernetes"
    assert ApiSettings(backend="local").auth_mode() == "token"


def test_namespace_isolation(backend: MemoryBackend) -> None:
    mine = backend.put(None, namespace="team-a")
    theirs = backend.put(None, namespace="team-b")
    rules = RuleTable({"alice": {"team-a": {"get", "list", "create", "delete"}},
                       "viewer": {"team-a": {"get", "list"}}, "admin": {"*": {"get", "list", "create", "delete"}}})
    with TestClient(create_app(ApiSettings(backend="local"), backend, authenticator=rules)) as http:
        alice, viewer, admin = ({"Authorization": f"Bearer {who}"} for who in ("alice", "viewer", "admin"))
        assert [t["task_id"] for t in http.get("/tasks", headers=alice).json()["data"]["items"]] == [mine]
        assert http.get("/tasks", headers=alice).json()["data"]["total"] == 1
        assert http.get("/tasks", headers=admin).json()["data"]["total"] == 2
        # another namespace's task looks exactly like an unknown one: no existence oracle
        for path in (f"/task_status/{theirs}", f"/tasks/{theirs}/metrics", f"/task_status/{theirs}/events"):
            assert http.get(path, headers=alice).status_code == 404
        assert http.delete(f"/tasks/{theirs}", headers=alice).status_code == 404
        assert http.delete(f"/tasks/{mine}", headers=viewer).status_code == 403
        assert not backend.records[mine].cancelled
        assert http.post("/train", json={**BODY, "namespace": "team-b"}, headers=alice).status_code == 403
        denied = http.post("/train", json={**BODY, "namespace": "team-a"}, headers=viewer)
        assert denied.status_code == 403 and "create yolotrainings in namespace 'team-a'" in denied.json()["detail"]
        assert http.post("/train", json={**BODY, "namespace": "team-a"}, headers=alice).status_code == 200
        assert http.delete(f"/tasks/{mine}", headers=alice).status_code == 200
        assert http.get("/metrics", headers=alice).status_code == 403


def test_access_review_bodies() -> None:
    who = Principal(name="alice", key="k", groups=("devs",), uid="u1", extra={"scopes": ["x"]})
    resource = access_review(who, "delete", "team-a")["spec"]
    assert resource == {"user": "alice", "groups": ["devs"], "uid": "u1", "extra": {"scopes": ["x"]},
                        "resourceAttributes": {"group": "yolo-operator.io", "resource": "yolotrainings",
                                               "verb": "delete", "namespace": "team-a"}}
    assert access_review(who, "list", None)["spec"]["resourceAttributes"]["namespace"] == ""
    assert access_review(who, "metrics", None)["spec"]["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}


def test_ttl_cache_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("yolo_api.auth.time.monotonic", lambda: now[0])
    cache = TtlCache(max_entries=2)
    cache.put("a", 1, ttl=10)
    now[0] += 11
    assert cache.get("a") is None and cache.get("a", stale_for=60) == 1
    cache.put("b", 2, ttl=10)
    cache.put("c", 3, ttl=10)
    assert cache.get("a", stale_for=60) is None and cache.get("c") == 3  # the oldest was dropped



def test_the_openapi_schema_declares_the_bearer_token(backend: MemoryBackend) -> None:
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)) as http:
        schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/train"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]
