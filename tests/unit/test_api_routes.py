"""Routes with TestClient over an in-memory backend: every envelope shape, the 404s, the 422s, cancel."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakes import MemoryBackend
from yolo_crd.spec import YoloTrainingSpec

FINAL = {"mAP50": 0.3317, "mAP50-95": 0.2322, "precision": 0.9957, "recall": 0.3333, "f1_score": 0.4995}


def test_train_returns_the_submitted_envelope(http: TestClient, backend: MemoryBackend) -> None:
    response = http.post("/train", json={"model": "yolov8n.yaml", "data": "d.yaml", "epochs": 3, "gpus": 0,
                                         "hyperparameters": {"lr0": 0.01}})
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0 and body["message"] == "任务已提交" and body["data"]["status"] == "pending"
    uuid.UUID(body["data"]["task_id"])
    assert backend.submitted[0].epochs == 3 and backend.submitted[0].train_device() == "cpu"


@pytest.mark.parametrize(("body", "fragment"), [
    ({"data": "d.yaml"}, "model"),
    ({"model": "m.yaml", "data": "d.yaml", "epochs": 0}, "epochs"),
    ({"model": "m.yaml", "data": "d.yaml", "epochs": "many"}, "epochs"),
    ({"model": "m.yaml", "data": "d.yaml", "batch": 0}, "batch"),
    ({"model": "m.yaml", "data": "d.yaml", "hyperparameters": {"project": "/etc"}}, "trainer chooses where outputs"),
    ({"model": "m.yaml", "data": "d.yaml", "hyperparameters": {"lr": 1}}, "unknown hyperparameter 'lr'"),
    ({"model": "m.yaml", "data": "d.yaml", "gpus": 1, "device": "cpu"}, "set gpus to 0"),
    ({"model": "m.yaml", "data": "d.yaml", "name": "Bad_Name"}, "name"),
    ({"model": "m.yaml", "data": "d.yaml", "surprise": 1}, "surprise"),
    ({"model": "m.exe", "data": "d.yaml"}, "weights (.pt) or an architecture"),
])
def test_invalid_bodies_get_422_with_actionable_errors(http: TestClient, backend: MemoryBackend,
                                                       body: dict[str, Any], fragment: str) -> None:
    response = http.post("/train", json=body)
    assert response.status_code == 422
    envelope = response.json()
    assert envelope["code"] == 1 and envelope["message"] == "请求参数无效"
    assert fragment in str(envelope["data"]["errors"])
    assert backend.records == {}


def test_exports_and_success_criteria_are_taken_in_either_spelling(http: TestClient, backend: MemoryBackend) -> None:
    snake = {"export": ["onnx", "torchscript"], "export_tolerance": 0.02, "success_criteria": {"mAP50": 0.5, "recall": 0.6}}
    camel = {"export": ["onnx"], "exportTolerance": 0.05, "successCriteria": {"mAP50-95": 0.4, "f1Score": 0.6}}
    for extra in (snake, camel):
        assert http.post("/train", json={"model": "m.yaml", "data": "d.yaml", **extra}).status_code == 200
    first, second = backend.submitted
    assert (first.export, first.export_limit(), first.success_criteria and first.success_criteria.thresholds()) == (
        ["onnx", "torchscript"], 0.02, {"recall": 0.6, "mAP50": 0.5})
    assert (second.export, second.export_limit(), second.success_criteria and second.success_criteria.thresholds()) == (
        ["onnx"], 0.05, {"mAP50-95": 0.4, "f1Score": 0.6})


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"export": ["tflite"]}, "Input should be 'onnx' or 'torchscript'"),
    ({"export": ["onnx", "onnx"]}, "export lists a format twice"),
    ({"export": "onnx"}, "valid list"),
    ({"export_tolerance": 2}, "less than or equal to 1"),
    ({"exportTolerance": -0.1}, "greater than or equal to 0"),
    ({"success_criteria": {"accuracy": 0.5}}, "unknown metric(s) 'accuracy': successCriteria takes precision, recall"),
    ({"successCriteria": {"mAP50": 1.5}}, "less than or equal to 1"),
    ({"success_criteria": {"recall": -0.1}}, "greater than or equal to 0"),
    ({"success_criteria": {}}, "must name at least one of"),
])
def test_bad_exports_and_criteria_are_422_and_start_nothing(http: TestClient, backend: MemoryBackend,
                                                            extra: dict[str, Any], fragment: str) -> None:
    response = http.post("/train", json={"model": "m.yaml", "data": "d.yaml", **extra})
    assert response.status_code == 422 and response.json()["code"] == 1
    assert fragment in str(response.json()["data"]["errors"])
    assert backend.records == {} and backend.submitted == []


def test_device_alone_sets_the_gpu_count(http: TestClient, backend: MemoryBackend) -> None:
    assert http.post("/train", json={"model": "m.yaml", "data": "d.yaml", "device": "0,1"}).status_code == 200
    assert backend.submitted[0].gpus == 2


def test_non_json_and_oversized_bodies(http: TestClient) -> None:
    assert http.post("/train", content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    huge = {"model": "m.yaml", "data": "d.yaml", "hyperparameters": {"seed": 1}, "pad": "x" * 100_000}
    response = http.post("/train", json=huge)
    assert response.status_code == 413 and response.json()["code"] == 1


def test_the_four_states(http: TestClient, backend: MemoryBackend) -> None:
    pending = backend.put(None)
    progress = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 5, "totalEpochs": 20,
                            "progress": 25.0, "metrics": {"epoch": 5, "mAP50": 0.4}})
    success = backend.put({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL,
                           "weightsPath": "/r/w/best.pt", "projectPath": "/r"})
    failure = backend.put({"phase": "Failed", "stage": "failed", "reason": "ModelNotFound", "message": "模型文件不存在: /m.pt",
                           "trainingFailure": {"reason": "ModelNotFound", "message": "模型文件不存在: /m.pt"}})

    body = http.get(f"/task_status/{pending}").json()
    assert body == {"code": 0, "message": "任务等待中", "data": {"task_id": pending, "status": "pending"}}
    response = http.get(f"/task_status/{progress}")
    assert response.status_code == 200
    result = response.json()["data"]["result"]
    assert (result["stage"], result["current_epoch"], result["total_epochs"], result["progress"]) == ("training", 5, 20, "25.0%")
    assert result["metrics"]["mAP50"] == 0.4
    body = http.get(f"/task_status/{success}").json()
    assert body["message"] == "训练完成" and body["data"]["result"]["final_metrics"] == FINAL
    response = http.get(f"/task_status/{failure}")
    assert response.status_code == 500
    assert response.json() == {"code": 1, "message": "训练失败", "data": {
        "task_id": failure, "status": "failure", "error": "模型文件不存在: /m.pt", "reason": "ModelNotFound"}}


@pytest.mark.parametrize("task_id", [
    str(uuid.uuid4()), "not-a-uuid", "x" * 200, "任务", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..", "a b", "'; DROP TABLE",
])
def test_unknown_or_malformed_ids_are_404_never_500(http: TestClient, task_id: str) -> None:
    response = http.get(f"/task_status/{task_id}", follow_redirects=False)
    if task_id == "..":  # the client normalises /task_status/.. to /, which leads to the dashboard
        assert response.status_code == 307 and response.headers["location"] == "/ui"
        return
    assert response.status_code in (404, 422)
    assert response.json()["code"] == 1
    if response.status_code == 404 and "%2F" not in task_id and task_id != "..":  # these never reach the route
        assert response.json()["message"] == "任务不存在"


def test_very_long_ids_are_rejected_not_crashed(http: TestClient) -> None:
    response = http.get(f"/task_status/{'y' * 5000}")
    assert response.status_code == 422 and response.json()["code"] == 1


def test_english_on_request(http: TestClient, backend: MemoryBackend) -> None:
    task = backend.put(None)
    assert http.get(f"/task_status/{task}", headers={"Accept-Language": "en-US"}).json()["message"] == "Task is pending"
    assert http.get("/task_status/nope", headers={"Accept-Language": "en"}).json()["message"] == "Task not found"


def test_cancel(http: TestClient, backend: MemoryBackend) -> None:
    task = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 3})
    response = http.delete(f"/tasks/{task}")
    assert response.status_code == 200
    assert response.json()["data"]["error"] == "cancelled" and response.json()["message"] == "任务已取消"
    after = http.get(f"/task_status/{task}")
    assert after.status_code == 500 and after.json()["data"]["error"] == "cancelled"
    assert http.delete("/tasks/nope").status_code == 404


def test_list_is_newest_first_with_paging(http: TestClient, backend: MemoryBackend) -> None:
    ids = [backend.put(None) for _ in range(5)]
    page = http.get("/tasks", params={"offset": 1, "limit": 2}).json()["data"]
    assert page["total"] == 5 and [item["task_id"] for item in page["items"]] == [ids[3], ids[2]]
    assert http.get("/tasks", params={"limit": 0}).status_code == 422


def test_metrics_history(http: TestClient, backend: MemoryBackend) -> None:
    task = backend.put({"stage": "training", "history": [{"epoch": 1, "mAP50": 0.1, "trainBoxLoss": 2.0},
                                                          {"epoch": 2, "mAP50": 0.2}], "bestEpoch": 2})
    data = http.get(f"/tasks/{task}/metrics").json()["data"]
    assert data["best_epoch"] == 2 and data["epochs"][0] == {"epoch": 1, "mAP50": 0.1, "train_box_loss": 2.0}
    assert http.get("/tasks/nope/metrics").status_code == 404


def test_probes(http: TestClient, backend: MemoryBackend) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    backend.is_ready = False
    assert http.get("/readyz").status_code == 503
    assert http.get("/openapi.json").json()["paths"]["/task_status/{task_id}"]


@pytest.mark.parametrize(("lang", "not_found", "not_allowed", "too_large"), [
    ("en-US,en;q=0.9", "No such route", "Method not allowed", "Request body too large"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "接口不存在", "不支持此请求方法", "请求体过大"),
    ("", "接口不存在", "不支持此请求方法", "请求体过大"),  # the spec's language by default
    ("fr-FR, en;q=0.5", "No such route", "Method not allowed", "Request body too large"),
])
def test_http_errors_speak_the_envelopes_language(http: TestClient, lang: str, not_found: str, not_allowed: str,
                                                   too_large: str) -> None:
    headers = {"Accept-Language": lang}
    response = http.get("/nope", headers=headers)
    assert response.status_code == 404 and response.json() == {"code": 1, "message": not_found, "data": {"path": "/nope"}}
    response = http.put("/train", headers=headers)
    assert response.status_code == 405 and response.json()["message"] == not_allowed
    response = http.post("/train", content=b"x" * 70_000, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["message"] == too_large


def test_the_root_leads_to_the_dashboard(http: TestClient) -> None:
    response = http.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/ui"


def test_without_gpus_or_device_the_backend_decides(http: TestClient, backend: MemoryBackend) -> None:
    backend.gpus = 0
    http.post("/train", json={"model": "m.yaml", "data": "d.yaml"})
    http.post("/train", json={"model": "m.yaml", "data": "d.yaml", "gpus": 2})
    assert [spec.gpus for spec in backend.submitted] == [0, 2]


def test_list_filters_by_state_and_says_what_may_be_cancelled(http: TestClient, backend: MemoryBackend) -> None:
    running = backend.put({"phase": "Running", "stage": "training"})
    done = backend.put({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, "stopReason": "time_limit"})
    cancelled = backend.put({"phase": "Failed", "stage": "failed", "reason": "Cancelled", "error": "cancelled"})
    def ids(state: str) -> list[str]:
        return [item["task_id"] for item in http.get(f"/tasks?status={state}").json()["data"]["items"]]
    assert ids("progress") == [running] and ids("success") == [done] and ids("cancelled") == [cancelled]
    assert ids("failure") == [cancelled]  # a cancelled training is a failure in the spec's terms
    assert http.get("/tasks?status=bogus").status_code == 422
    items = {item["task_id"]: item for item in http.get("/tasks").json()["data"]["items"]}
    assert items[running]["can_cancel"] and not items[done]["can_cancel"]
    assert items[done]["stop_reason"] == "time_limit" and items[done]["final_metrics"] == FINAL
    assert items[cancelled]["state"] == "cancelled" and items[cancelled]["phase"] == "Failed"
    assert http.get(f"/tasks/{running}").json()["data"]["state"] == "progress"


def test_logs_are_read_like_the_task(http: TestClient, backend: MemoryBackend) -> None:
    task = backend.put({"phase": "Running", "stage": "training"})
    assert http.get(f"/tasks/{task}/logs").status_code == 404  # no log yet
    backend.logs_by_task[task] = "line 1\nline 2\n"
    assert http.get(f"/tasks/{task}/logs?max_bytes=7").text == "line 2\n"
    assert http.get(f"/tasks/{task}/logs", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401


def test_the_train_body_in_openapi_is_the_spec_with_its_bounds_and_descriptions(http: TestClient) -> None:
    schema = http.get("/openapi.json").json()["components"]["schemas"]["TrainRequest"]
    fields = schema["properties"]
    spec = YoloTrainingSpec.model_json_schema(by_alias=False)["properties"]  # the API takes snake_case keys
    assert set(fields) == set(spec) | {"name", "namespace"}
    assert (fields["epochs"]["minimum"], fields["epochs"]["maximum"]) == (1, 10000)
    assert (fields["imgsz"]["minimum"], fields["imgsz"]["maximum"]) == (32, 8192)
    for key in ("resources", "active_deadline_seconds", "backoff_limit", "queue_name", "tolerations",
                "node_selector", "priority_class_name", "affinity", "image", "suspend", "ttl_seconds_after_finished"):
        assert fields[key].get("description") == spec[key]["description"], key
    assert all(field.get("description") for field in fields.values())


def test_cluster_fields_and_both_spellings_reach_the_spec(http: TestClient, backend: MemoryBackend) -> None:
    response = http.post("/train", json={
        "model": "m.yaml", "data": "d.yaml", "gpus": 0, "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
        "activeDeadlineSeconds": 600, "backoff_limit": 2, "queue_name": "team-a", "priorityClassName": "low"})
    assert response.status_code == 200, response.text
    spec = backend.submitted[0]
    assert spec.resources is not None and spec.resources.requests == {"cpu": "500m", "memory": "2Gi"}
    assert (spec.active_deadline_seconds, spec.backoff_limit, spec.queue_name, spec.priority_class_name) == (
        600, 2, "team-a", "low")
    assert http.post("/train", json={"model": "m.yaml", "data": "d.yaml", "backoff_limit": 101}).status_code == 422


def test_the_openapi_of_tasks_says_what_status_and_state_each_mean(http: TestClient) -> None:
    description = http.get("/openapi.json").json()["paths"]["/tasks"]["get"]["description"]
    assert "``status``: the spec's state" in description and "``cancelled`` for a training that was cancelled" \
        in description
