"""The API's /metrics, parsed as Prometheus would: request series by route template, per-training gauges."""

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

RUNNING = {"phase": "Running", "stage": "training", "currentEpoch": 4, "totalEpochs": 10, "progress": 40.0,
           "startTime": "2026-01-01T00:00:00Z",
           "metrics": {"epoch": 4, "mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.7,
                       "train_box_loss": 1.5, "train_cls_loss": 2.5, "train_dfl_loss": 1.1}}


def scrape(http: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_series_exist_and_move() -> None:
    backend = MemoryBackend()
    task = backend.put(RUNNING, namespace="team-a")
    backend.put(None)
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend), headers=AUTH) as http:
        first = scrape(http)
        for _ in range(3):
            http.get(f"/task_status/{task}")
        http.get("/task_status/unknown-id")
        second = scrape(http)
        route = {"route": "/task_status/{task_id}", "method": "GET"}
        assert value(second, "yolo_api_requests_total", **route, status="200") - \
            value(first, "yolo_api_requests_total", **route, status="200") == 3
        assert value(second, "yolo_api_requests_total", **route, status="404") == 1  # ids never become labels
        assert value(second, "yolo_api_request_duration_seconds_count", **route) >= 4
        assert value(second, "yolo_trainings", state="progress") == 1
        assert value(second, "yolo_trainings", state="pending") == 1
        assert value(second, "yolo_api_index_size") == 2
        who = {"namespace": "team-a", "name": "t", "task_id": task}
        assert value(second, "yolo_training_map50", **who) == 0.5
        assert value(second, "yolo_training_progress_percent", **who) == 40.0
        assert value(second, "yolo_training_box_loss", **who) == 1.5
        assert value(second, "yolo_training_eta_seconds", **who) > 0
        backend.put({**RUNNING, "currentEpoch": 5, "progress": 50.0,
                     "metrics": {**RUNNING["metrics"], "epoch": 5, "mAP50": 0.6}}, task_id=task, namespace="team-a")
        third = scrape(http)
        assert value(third, "yolo_training_epoch", **who) == 5 and value(third, "yolo_training_map50", **who) == 0.6


def test_metrics_need_a_token_unless_public() -> None:
    backend = MemoryBackend()
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)) as http:
        assert http.get("/metrics").status_code == 401
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN, metrics_public=True), backend)) as http:
        assert http.get("/metrics").status_code == 200
