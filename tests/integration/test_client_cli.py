"""``yoloctl`` against a real HTTP server (uvicorn on loopback) over an in-memory backend."""

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from fakes import MemoryBackend
from yolo_api.app import create_app
from yolo_api.client import app as yoloctl
from yolo_api.settings import ApiSettings

FINAL = {"mAP50": 0.9, "mAP50-95": 0.6, "precision": 0.8, "recall": 0.9, "f1_score": 0.8471}


@pytest.fixture
def served() -> Iterator[tuple[str, MemoryBackend]]:
    backend = MemoryBackend()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ApiSettings(backend="local"), backend), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(url + "/healthz")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    yield url, backend
    server.should_exit = True
    thread.join(timeout=10)


def test_submit_status_list_watch_cancel(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    runner = CliRunner()
    submitted = runner.invoke(yoloctl, ["submit", "yolov8n.yaml", "data.yaml", "--url", url, "--epochs", "3",
                                        "--gpus", "0", "--hp", "lr0=0.02", "--hp", "optimizer=SGD"])
    assert submitted.exit_code == 0, submitted.output
    [spec] = backend.submitted
    assert spec.hyperparameters == {"lr0": 0.02, "optimizer": "SGD"} and spec.epochs == 3
    task = next(iter(backend.records))
    assert "任务等待中" in runner.invoke(yoloctl, ["status", task, "--url", url]).output
    listed = runner.invoke(yoloctl, ["list", "--url", url])
    assert listed.exit_code == 0 and task[:8] in listed.output
    done = backend.put({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, "weightsPath": "/w.pt"})
    watched = runner.invoke(yoloctl, ["watch", done, "--url", url, "--interval", "0.1"])
    assert watched.exit_code == 0 and "0.8471" in watched.output
    cancelled = runner.invoke(yoloctl, ["cancel", task, "--url", url])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    failed = runner.invoke(yoloctl, ["watch", task, "--url", url, "--interval", "0.1"])
    assert failed.exit_code == 1
    bad = runner.invoke(yoloctl, ["submit", "yolov8n.yaml", "data.yaml", "--url", url, "--hp", "project=/etc"])
    assert bad.exit_code == 1 and "trainer chooses" in bad.output
