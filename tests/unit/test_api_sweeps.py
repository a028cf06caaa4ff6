"""The /sweeps routes over an in-memory backend: shapes, a 422 naming the field for each kind of bad input, 404,
409, cancel (200 or 202), and authorization on ``yolosweeps`` as trainings are authorized on ``yolotrainings``."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import MemoryBackend
from yolo_api.app import create_app
from yolo_api.auth import Principal
from yolo_api.auth_kubernetes import access_review
from yolo_api.settings import ApiSettings

TEMPLATE = {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3}
BODY: dict[str, Any] = {"template": TEMPLATE, "objective": {"metric": "mAP50-95"}, "maxTrials": 4, "parallelism": 2,
                        "algorithm": "grid", "parameters": {"lr0": {"values": [0.01, 0.02]}, "imgsz": {"values": [64, 96]}}}
SPEC = {"template": {**TEMPLATE, "gpus": 0}, "objective": {"metric": "mAP50-95"}, "maxTrials": 3, "algorithm": "random",
        "parameters": {"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}}}


def trial(number: int, state: str, objective: float | None) -> dict[str, Any]:
    return {"trial": number, "name": f"s-{number:03d}", "task_id": f"task-{number}", "state": state,
            "objective": objective, "epoch": 3, "parameters": {"lr0": 0.01 * (number + 1)}, "reason": None}


def test_post_creates_a_sweep_in_either_spelling(http: TestClient, backend: MemoryBackend) -> None:
    response = http.post("/sweeps", json={**BODY, "name": "lr-grid", "namespace": "team-a"})
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0 and body["message"] == "调参任务已提交"
    assert body["data"] == {"sweep_id": body["data"]["sweep_id"], "name": "lr-grid", "namespace": "team-a",
                            "state": "pending"}
    spec, name, namespace = backend.submitted_sweeps[0]
    assert (name, namespace, spec.trial_budget(), spec.parallelism) == ("lr-grid", "team-a", 4, 2)
    assert spec.template.gpus == backend.gpus  # no gpus in the template: the backend's default, as POST /train
    snake = {"template": {**TEMPLATE, "hyperparameters": {"cos_lr": True}}, "objective": {"metric": "mAP50"},
             "max_trials": 2, "early_stopping": {"type": "median", "min_epochs": 2}, "seed": 7,
             "parameters": {"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}}}
    assert http.post("/sweeps", json=snake, headers={"Accept-Language": "en"}).json()["message"] == "Sweep submitted"
    spec = backend.submitted_sweeps[1][0]
    assert spec.max_trials == 2 and spec.seed == 7 and spec.early_stopping and spec.early_stopping.min_epochs == 2


@pytest.mark.parametrize(("change", "fragment"), [
    ({"parameters": {"lr": {"values": [0.1]}}}, "parameters.lr: 'lr' cannot be searched"),
    ({"parameters": {"project": {"values": ["/etc"]}}}, "parameters.project: 'project' cannot be searched"),
    ({"algorithm": "random", "parameters": {"lr0": {"min": 0.1, "max": 0.1}}}, "the range is empty or inverted"),
    ({"algorithm": "random", "parameters": {"lr0": {"min": 0.1, "max": 0.01}}}, "min 0.1 must be below max 0.01"),
    ({"algorithm": "random", "parameters": {"lr0": {"min": 0, "max": 0.1, "scale": "log"}}},
     "a log range needs bounds above 0"),
    ({"parameters": {"lr0": {"min": 0.001, "max": 0.1}}}, "parameters.lr0: grid needs values"),
    ({"parameters": {"momentum": {"values": [0.9, 2.0]}}}, "parameters.momentum: values[1]"),
    ({"maxTrials": 201}, "'loc': ['body', 'maxTrials'], 'msg': 'Input should be less than or equal to 200'"),
    ({"parallelism": 0}, "'loc': ['body', 'parallelism'], 'msg': 'Input should be greater than or equal to 1'"),
    ({"objective": {"metric": "mAP50", "goal": "minimize"}}, "goal must be maximize"),
    ({"template": {**TEMPLATE, "epochs": 0}}, "'loc': ['body', 'template', 'epochs']"),
    ({"template": {**TEMPLATE, "hyperparameters": {"lr": 1}}}, "unknown hyperparameter 'lr'"),
    ({"template": {**TEMPLATE, "name": "x"}}, "name and namespace belong to the sweep"),
    ({"name": "Bad_Name"}, "'loc': ['body', 'name']"),
    ({"name": "n" * 53}, "at most 52 characters"),
    ({"surprise": 1}, "'loc': ['body', 'surprise']"),
])
def test_bad_input_is_a_422_naming_the_field(http: TestClient, backend: MemoryBackend, change: dict[str, Any],
                                            fragment: str) -> None:
    response = http.post("/sweeps", json={**BODY, **change})
    assert response.status_code == 422, response.text
    envelope = response.json()
    assert envelope["code"] == 1 and envelope["message"] == "请求参数无效"
    assert fragment in str(envelope["data"]["errors"])
    assert backend.submitted_sweeps == []


def test_a_taken_name_is_a_409(http: TestClient) -> None:
    assert http.post("/sweeps", json={**BODY, "name": "mine"}).status_code == 200
    again = http.post("/sweeps", json={**BODY, "name": "mine"}, headers={"Accept-Language": "en"})
    assert again.status_code == 409 and again.json()["message"] == "A sweep of that name exists"
    assert again.json()["data"] == {"name": "mine", "namespace": None}


def test_list_is_newest_first_and_filters_by_state(http: TestClient, backend: MemoryBackend) -> None:
    old = backend.put_sweep(SPEC, {"phase": "Succeeded", "best": {"trial": 0, "name": "s-000", "objective": 0.5}})
    new = backend.put_sweep(SPEC, {"phase": "Running", "counts": {"total": 2, "running": 1, "succeeded": 1}})
    data = http.get("/sweeps").json()["data"]
    assert [item["sweep_id"] for item in data["items"]] == [new, old] and data["total"] == 2
    first = data["items"][0]
    assert (first["state"], first["can_cancel"], first["counts"]["running"], first["max_trials"]) == ("running", True, 1, 3)
    assert first["parameters"] == ["lr0"] and first["objective"] == {"metric": "mAP50-95"} and "trials" not in first
    done = http.get("/sweeps", params={"state": "succeeded"}).json()["data"]["items"]
    assert [item["sweep_id"] for item in done] == [old] and done[0]["best"]["objective"] == 0.5
    assert not done[0]["can_cancel"]
    assert http.get("/sweeps", params={"limit": 1, "offset": 1}).json()["data"]["items"][0]["sweep_id"] == old
    assert http.get("/sweeps", params={"state": "done"}).status_code == 422


def test_one_sweep_has_every_trial_sorted_by_objective(http: TestClient, backend: MemoryBackend) -> None:
    rows = [trial(0, "succeeded", 0.3), trial(1, "running", None), trial(2, "succeeded", 0.7), trial(3, "failed", 0.1)]
    sweep = backend.put_sweep(SPEC, {"phase": "Running", "best": {"trial": 2, "name": "s-002", "task_id": "task-2",
                                                                  "objective": 0.7}}, trials=rows)
    data = http.get(f"/sweeps/{sweep}").json()["data"]
    assert [row["trial"] for row in data["trials"]] == [2, 0, 3, 1]
    assert data["trials"][0]["task_id"] == "task-2" and data["best"]["taskId"] == "task-2"  # best: wire form
    assert data["spec"]["algorithm"] == "random" and data["can_cancel"] is True
    missing = http.get("/sweeps/nope", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and missing.json() == {"code": 1, "message": "Sweep not found",
                                                             "data": {"sweep_id": "nope"}}


def test_cancel_answers_200_once_over_and_202_while_cancelling(http: TestClient, backend: MemoryBackend) -> None:
    sweep = backend.put_sweep(SPEC, {"phase": "Running"})
    response = http.delete(f"/sweeps/{sweep}")
    assert response.status_code == 200 and response.json()["message"] == "调参任务已取消"
    assert response.json()["data"]["state"] == "failed" and response.json()["data"]["cancelled"] is True
    backend.cancel_concludes = False
    cluster = backend.put_sweep(SPEC, {"phase": "Running"})
    response = http.delete(f"/sweeps/{cluster}", headers={"Accept-Language": "en"})
    assert response.status_code == 202 and response.json()["message"] == "Sweep cancel requested"
    finished = backend.put_sweep(SPEC, {"phase": "Succeeded"})
    response = http.delete(f"/sweeps/{finished}", headers={"Accept-Language": "en"})
    assert response.status_code == 200 and response.json()["message"] == "Sweep already finished"
    assert not backend.sweep_records[finished].cancelled
    assert http.delete("/sweeps/nope").status_code == 404


class ResourceRules:
    """An authorizer from a table {token: {(resource, namespace): verbs}} ("*" namespace: every namespace)."""

    def __init__(self, rules: dict[str, dict[tuple[str, str], set[str]]]) -> None:
        self.rules = rules

    async def authenticate(self, token: str | None) -> Principal | None:
        return Principal(name=token, key=token) if token in self.rules else None

    async def allowed(self, who: Principal, action: str, namespace: str | None,
                      resource: str = "yolotrainings") -> bool:
        grants = self.rules[who.key]
        return action in grants.get((resource, "*"), set()) or action in grants.get((resource, namespace or ""), set())


def test_sweeps_are_authorized_on_yolosweeps_per_namespace(backend: MemoryBackend) -> None:
    mine = backend.put_sweep(SPEC, {"phase": "Running"}, namespace="team-a")
    theirs = backend.put_sweep(SPEC, {"phase": "Running"}, namespace="team-b")
    every = {"get", "list", "create", "delete"}
    rules = ResourceRules({"alice": {("yolosweeps", "team-a"): every},
                           "viewer": {("yolosweeps", "team-a"): {"get", "list"}},
                           "trainer": {("yolotrainings", "*"): every},
                           "admin": {("yolosweeps", "*"): every}})
    with TestClient(create_app(ApiSettings(backend="local"), backend, authenticator=rules)) as http:
        alice, viewer, trainer, admin = ({"Authorization": f"Bearer {who}"} for who in
                                         ("alice", "viewer", "trainer", "admin"))
        for method, path in (("POST", "/sweeps"), ("GET", "/sweeps"), ("GET", f"/sweeps/{mine}"),
                             ("DELETE", f"/sweeps/{mine}")):
            refused = http.request(method, path, json=BODY if method == "POST" else None)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert [s["sweep_id"] for s in http.get("/sweeps", headers=alice).json()["data"]["items"]] == [mine]
        assert http.get("/sweeps", headers=admin).json()["data"]["total"] == 2
        assert http.get("/sweeps", headers=trainer).json()["data"]["total"] == 0  # trainings' rights are not sweeps'
        assert http.get(f"/sweeps/{theirs}", headers=alice).status_code == 404  # like an unknown id
        assert http.delete(f"/sweeps/{theirs}", headers=alice).status_code == 404
        assert http.get(f"/sweeps/{mine}", headers=viewer).json()["data"]["can_cancel"] is False
        denied = http.delete(f"/sweeps/{mine}", headers=viewer)
        assert denied.status_code == 403 and denied.json()["detail"] == "you may not delete yolosweeps in namespace 'team-a'"
        created = http.post("/sweeps", json={**BODY, "namespace": "team-a"}, headers=trainer)
        assert created.status_code == 403 and created.json()["data"]["resource"] == "yolosweeps"
        assert http.post("/sweeps", json={**BODY, "namespace": "team-b"}, headers=alice).status_code == 403
        assert http.post("/sweeps", json={**BODY, "namespace": "team-a"}, headers=alice).status_code == 200
        assert http.delete(f"/sweeps/{mine}", headers=alice).status_code == 200


def test_the_access_review_names_the_sweeps_resource() -> None:
    who = Principal(name="alice", key="k")
    attributes = access_review(who, "create", "team-a", "yolosweeps")["spec"]["resourceAttributes"]
    assert attributes == {"group": "yolo-operator.io", "resource": "yolosweeps", "verb": "create", "namespace": "team-a"}


def test_only_trainings_a_sweep_controls_are_its_trials_and_a_stale_event_never_wins() -> None:
    from yolo_api.backends.index import TrainingIndex, trial_link
    from yolo_api.backends.kubernetes_sweeps import SweepIndex

    def training(uid: str, owner_kind: str = "YoloSweep", **labels: str) -> dict[str, Any]:
        return {"metadata": {"uid": uid, "name": uid, "namespace": "team-a", "resourceVersion": "5",
                             "labels": {"yolo-operator.io/sweep": "s", "yolo-operator.io/trial": "1", **labels},
                             "annotations": {"yolo-operator.io/trial-parameters": '{"lr0": 0.01}'},
                             "ownerReferences": [{"kind": owner_kind, "uid": "sweep-uid", "controller": True}]},
                "spec": {}}

    assert trial_link(training("a")) is not None and trial_link(training("a")).parameters == {"lr0": 0.01}
    assert trial_link(training("b", owner_kind="Job")) is None  # labelled, but not controlled by a sweep
    assert trial_link(training("c", **{"yolo-operator.io/trial": "x"})) is None
    index = TrainingIndex()
    index.replace_all([training("a"), training("b", owner_kind="Job")])
    assert [record.task_id for record, _ in index.trials("sweep-uid")] == ["a"]
    index.apply("DELETED", training("a"))
    assert index.trials("sweep-uid") == []
    sweeps = SweepIndex()
    newer = {"metadata": {"uid": "u", "name": "s", "namespace": "team-a", "resourceVersion": "9"},
             "spec": SPEC, "status": {"phase": "Running"}}
    sweeps.replace_all([newer])
    stale = {**newer, "metadata": {**newer["metadata"], "resourceVersion": "3"}, "status": {}}
    held = sweeps.apply("MODIFIED", stale)
    assert held is not None and held.state() == "running"  # the newer record is kept
