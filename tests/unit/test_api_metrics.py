"""The API's /metrics, parsed as Prometheus would: request series by route template, per-training gauges."""

import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings
from yolo_crd.status import utc_now

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


def test_per_training_series_follow_the_trainings_that_matter_now() -> None:
    """The bugs: a failed training's ETA grew forever, and every training ever run kept its series."""
    backend = MemoryBackend()
    running = backend.put(RUNNING, namespace="team-a")
    recent = backend.put({**RUNNING, "phase": "Failed", "reason": "OOMKilled", "message": "killed",
                          "completionTime": utc_now()}, namespace="team-a")
    old = backend.put({**RUNNING, "phase": "Succeeded", "stage": "completed", "progress": 100.0,
                       "finalMetrics": {"mAP50": 0.5}, "completionTime": "2026-01-01T01:00:00Z"}, namespace="team-a")
    settings = ApiSettings(backend="local", auth_token=TOKEN, metrics_retention_seconds=600)
    with TestClient(create_app(settings, backend), headers=AUTH) as http:
        samples = scrape(http)
    exported = {dict(labels).get("task_id") for (name, labels) in samples if name == "yolo_training_info"}
    assert exported == {running, recent} and old not in exported  # the old one is gone; the recent one stays
    info = {dict(labels)["task_id"]: dict(labels)["state"] for (name, labels) in samples if name == "yolo_training_info"}
    assert info == {running: "progress", recent: "failure"}
    etas = {dict(labels)["task_id"] for (name, labels) in samples if name == "yolo_training_eta_seconds"}
    assert etas == {running}  # only while it runs
    assert value(samples, "yolo_training_map50", namespace="team-a", name="t", task_id=recent) == 0.5


def test_counts_are_counters_streams_are_timed_apart_and_the_process_is_there() -> None:
    backend = MemoryBackend()
    backend.reconnects = 3  # type: ignore[attr-defined]
    done = backend.put({**RUNNING, "phase": "Succeeded", "stage": "completed", "finalMetrics": {"mAP50": 0.5}})
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend), headers=AUTH) as http:
        with http.stream("GET", f"/task_status/{done}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            stream.read()
        http.get(f"/task_status/{done}")
        samples = scrape(http)
        text = http.get("/metrics").text
    assert "# TYPE yolo_api_watch_reconnects_total counter" in text  # a count is a counter, not a gauge
    assert value(samples, "yolo_api_watch_reconnects_total") == 3
    events = "/task_status/{task_id}/events"
    assert value(samples, "yolo_api_stream_duration_seconds_count", route=events) == 1
    assert value(samples, "yolo_api_request_duration_seconds_count", route=events, method="GET") == 0
    assert value(samples, "yolo_api_request_duration_seconds_count", route="/task_status/{task_id}", method="GET") == 1
    assert value(samples, "yolo_api_streams_open") == 0
    assert value(samples, "process_resident_memory_bytes") > 0


def test_promtool_accepts_both_expositions(tmp_path: Path) -> None:
    """Lint as Prometheus' own tool does (Debian's prometheus package; `make test` installs it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make install` (Debian package prometheus)")
    from yolo_operator.metrics import REGISTRY

    backend = MemoryBackend()
    backend.put(RUNNING, namespace="team-a")
    backend.reconnects = 0  # type: ignore[attr-defined]
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend), headers=AUTH) as http:
        http.get("/task_status/unknown")
        api = http.get("/metrics").text
    for exposition in (api, generate_latest(REGISTRY).decode()):
        checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
