"""Authentication and per-namespace authorization of every route, with the static token and a rule table."""

import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.auth import Principal, StaticToken, load_or_create_token
from yolo_api.auth_kubernetes import STALE_SECONDS, access_review, fresh, remember, review_cache, stale
from yolo_api.settings import ApiSettings

#: Routes anyone may read: probes, the API's own documentation, the dashboard's page and static files (its data
#: comes from the routes that need a token). Every other route must answer 401 without a valid token.
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/", "/ui",
          "/favicon.ico"}
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


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers walked; static mounts left out."""
    found: list[tuple[str, str]] = []

    def walk(entries: list[Any]) -> None:
        for route in entries:
            if hasattr(route, "original_router"):  # an included router
                walk(route.original_router.routes)
            elif isinstance(route, Route | APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods or ()) if method != "HEAD")
    walk(list(app.routes))
    return found


def test_every_data_route_needs_a_token(backend: MemoryBackend) -> None:
    task = backend.put(None)
    app = create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)
    data_routes = [(method, path) for method, path in routes(app) if path not in PUBLIC]
    assert {("POST", "/train"), ("GET", "/tasks/{task_id}/artifacts/{name}"), ("GET", "/metrics")} <= set(data_routes)
    with TestClient(app) as http:
        for method, path in data_routes:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": TOKEN}):
                response = http.request(method, path.format(task_id=task, name="best.pt", sweep_id=task), headers=headers,
                                        json=BODY if method == "POST" else None)
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.json()["code"] == 1 and TOKEN not in response.text
        for path in PUBLIC:
            assert http.get(path).status_code in (200, 307), path
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


def test_reviews_are_fresh_for_their_ttl_kept_stale_for_a_while_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("yolo_api.auth_kubernetes.time.monotonic", lambda: now[0])
    cache = review_cache(max_entries=2)
    remember(cache, "a", 1, ttl=10)
    now[0] += 11
    assert fresh(cache, "a") is None and stale(cache, "a") == 1  # the cluster cannot be asked: the old answer
    now[0] += STALE_SECONDS
    assert stale(cache, "a") is None  # too old even for that
    for key in "bcd":
        remember(cache, key, key, ttl=10)
    assert stale(cache, "b") is None and fresh(cache, "d") == "d"  # bounded: the least recently used went


def test_the_openapi_schema_declares_the_bearer_token(backend: MemoryBackend) -> None:
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)) as http:
        schema = http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/train"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]
