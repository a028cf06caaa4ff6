"""``GET /tasks/compare`` over an in-memory backend: the shape the dashboard and ``yoloctl compare`` read, the
order asked for, ``differing``, and every refusal (422 for what the query may not be, 404 naming an unreadable id,
401 before anything)."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.auth import Principal
from yolo_api.settings import ApiSettings

FINAL = {"mAP50": 0.81, "mAP50-95": 0.5, "precision": 0.7, "recall": 0.6, "f1_score": 0.6462}
HISTORY = [{"epoch": 1, "mAP50-95": 0.2, "trainBoxLoss": 1.5, "valBoxLoss": 1.7},
           {"epoch": 2, "mAP50-95": 0.5, "trainBoxLoss": 1.1, "valBoxLoss": 1.3}]
DONE = {"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, "bestEpoch": 2, "history": HISTORY,
        "qualityGate": {"passed": True, "message": "quality gate met: mAP50 0.81 >= 0.5"}}


class TeamA:
    """The token "reader" may read namespace team-a only; any other token is unknown."""

    async def authenticate(self, token: str | None) -> Principal | None:
        return Principal(name="reader", key="reader") if token == "reader" else None

    async def allowed(self, who: Principal, action: str, namespace: str | None) -> bool:
        return namespace == "team-a" and action in ("get", "list")


def compare(http: TestClient, *ids: str, **headers: str) -> Any:
    return http.get("/tasks/compare", params={"ids": ",".join(ids)}, headers=headers)


def test_two_trainings_side_by_side_in_the_order_asked(http: TestClient, backend: MemoryBackend) -> None:
    first = backend.put(DONE, spec={"imgsz": 64, "batch": 16, "hyperparameters": {"lr0": 0.01, "seed": 1},
                                    "export": ["onnx"], "successCriteria": {"mAP50": 0.5}})
    second = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 20,
                          "history": HISTORY[:1]}, spec={"imgsz": 64, "batch": 8, "hyperparameters": {"seed": 1}})
    answer = compare(http, second, first)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["code"], body["message"]) == (0, "ok")
    running, done = body["data"]["tasks"]
    assert [running["task_id"], done["task_id"]] == [second, first]
    assert done == {
        "task_id": first, "name": "t", "state": "success", "stage": "completed", "final_metrics": FINAL,
        "best_epoch": 2, "complete": False,
        "params": {"model": "m.yaml", "data": "d.yaml", "epochs": 20, "imgsz": 64, "batch": 16, "lr0": 0.01,
                   "seed": 1, "export": ["onnx"], "successCriteria": {"mAP50": 0.5}},
        "history": [{"epoch": 1, "mAP50-95": 0.2, "train_box_loss": 1.5, "val_box_loss": 1.7},
                    {"epoch": 2, "mAP50-95": 0.5, "train_box_loss": 1.1, "val_box_loss": 1.3}],
        "quality_gate": {"passed": True, "message": "quality gate met: mAP50 0.81 >= 0.5"}}
    assert (running["state"], running["stage"], running["final_metrics"], running["quality_gate"]) == (
        "progress", "training", None, None)
    assert [epoch["epoch"] for epoch in running["history"]] == [1]
    # batch and lr0 differ, and so do export and successCriteria, which only the first training sets
    assert body["data"]["differing"] == ["batch", "lr0", "export", "successCriteria"]


def test_six_trainings_and_the_states_of_the_spec(http: TestClient, backend: MemoryBackend) -> None:
    pending = backend.put(None)
    failed = backend.put({"phase": "Failed", "stage": "completed", "finalMetrics": FINAL, "reason": "QualityGateNotMet",
                          "qualityGate": {"passed": False, "message": "quality gate not met: recall 0.6 < 0.9"}})
    cancelled = backend.put({"phase": "Running", "stage": "training"})
    backend.cancel(cancelled)
    others = [backend.put(DONE) for _ in range(3)]
    body = compare(http, pending, failed, cancelled, *others).json()["data"]
    assert [task["state"] for task in body["tasks"]] == ["pending", "failure", "failure", "success", "success",
                                                         "success"]
    assert body["tasks"][1]["quality_gate"] == {"passed": False, "message": "quality gate not met: recall 0.6 < 0.9"}
    assert body["tasks"][1]["final_metrics"] == FINAL  # a near miss still shows its figures
    assert body["tasks"][0]["history"] == [] and body["differing"] == []


def test_ids_may_be_repeated_as_parameters(http: TestClient, backend: MemoryBackend) -> None:
    first, second = backend.put(DONE), backend.put(DONE)
    answer = http.get("/tasks/compare", params=[("ids", first), ("ids", second)])
    assert [task["task_id"] for task in answer.json()["data"]["tasks"]] == [first, second]


@pytest.mark.parametrize(("ids", "fragment"), [
    ([], "no task id given"),
    (["A"], "1 task id given"),
    (["A", "B", "C", "D", "E", "F", "G"], "7 task ids given"),
    (["A", "B", "A"], "A is given twice"),
    (["A", "../etc"], "'../etc' is not a task id"),
    (["A", "", "B"], "an empty task id"),
    (["A", "x" * 201], "is not a task id"),
])
def test_what_the_query_may_not_be_is_a_422_saying_what_is_allowed(http: TestClient, backend: MemoryBackend,
                                                                   ids: list[str], fragment: str) -> None:
    known = {name: backend.put(DONE) for name in "ABCDEFG"}
    answer = compare(http, *(known.get(task_id, task_id) for task_id in ids))
    assert answer.status_code == 422
    body = answer.json()
    assert (body["code"], body["message"]) == (1, "请求参数无效")
    [error] = body["data"]["errors"]
    message = error["msg"].replace(known["A"], "A")
    assert error["loc"] == ["query", "ids"] and fragment in message
    assert "2 to 6 distinct task ids" in message
    assert http.get("/tasks/compare").status_code == 422  # no ids at all


def test_an_unknown_or_unreadable_id_is_a_404_naming_it(backend: MemoryBackend) -> None:
    mine, theirs = backend.put(DONE, namespace="team-a"), backend.put(DONE, namespace="team-b")
    unknown = "0b0e4f2a-0000-4000-8000-000000000000"
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend, TeamA()),
                    headers={"Authorization": "Bearer reader"}) as http:
        assert compare(http, mine, mine.upper()).status_code == 404
        for other in (unknown, theirs):
            answer = compare(http, mine, other, **{"Accept-Language": "en"})
            assert answer.status_code == 404 and answer.json() == {
                "code": 1, "message": "Task not found", "data": {"task_id": other}}
        assert compare(http, mine, theirs, **{"Authorization": "Bearer nobody"}).status_code == 401
        assert http.get("/tasks/compare", params={"ids": "x"}, headers={"Authorization": ""}).status_code == 401


def test_compare_is_not_taken_for_a_task_id(http: TestClient, backend: MemoryBackend) -> None:
    """GET /tasks/{task_id} is included after this route: /tasks/compare is never a lookup of task "compare"."""
    backend.put(DONE, task_id="compare")
    answer = http.get("/tasks/compare")
    assert answer.status_code == 422 and "no task id given" in str(answer.json()["data"]["errors"])
