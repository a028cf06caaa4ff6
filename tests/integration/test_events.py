"""``GET /task_status/{id}/events`` over real HTTP: the same envelopes as polling, pushed, ending at the end."""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from kubernetes import config

from apiserver import ApiServer
from emulator import ADMIN_TOKEN
from fakes import AUTH, TOKEN, MemoryBackend
from serving import serve
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.client import sse_events
from yolo_api.settings import ApiSettings

STEPS: list[dict[str, Any]] = [
    {"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 2, "progress": 50.0},
    {"phase": "Running", "stage": "training", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0},
    {"phase": "Succeeded", "stage": "completed", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0,
     "weightsPath": "/w/best.pt",
     "finalMetrics": {"mAP50": 0.9, "mAP50-95": 0.6, "precision": 0.8, "recall": 0.9, "f1_score": 0.8471}},
]


def read_events(url: str, task_id: str, headers: dict[str, str]) -> Iterator[tuple[float, str, str]]:
    with httpx.stream("GET", f"{url}/task_status/{task_id}/events", headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event, data in sse_events(response.iter_lines()):
            yield time.monotonic(), event, data


def test_events_push_every_change_and_end_at_the_terminal_state() -> None:
    backend = MemoryBackend()
    task = backend.put(None)
    settings = ApiSettings(backend="local", auth_token=TOKEN, sse_poll_interval=0.05)
    written: list[float] = []

    def trainer() -> None:
        for step in STEPS:
            time.sleep(0.4)
            backend.put(step, task_id=task)
            written.append(time.monotonic())

    with serve(create_app(settings, backend)) as url:
        threading.Thread(target=trainer, daemon=True).start()
        events = list(read_events(url, task, AUTH))
        polled = httpx.get(f"{url}/task_status/{task}", headers=AUTH).json()
        assert httpx.get(f"{url}/task_status/{task}/events").status_code == 401
        assert httpx.get(f"{url}/task_status/nope/events", headers=AUTH).status_code == 404
    statuses = [json.loads(data) for _, event, data in events if event == "status"]
    assert [s["data"]["status"] for s in statuses] == ["pending", "progress", "progress", "success"]
    assert statuses[-1] == polled  # exactly the polling endpoint's envelope
    assert events[-1][1] == "end" and json.loads(events[-1][2]) == {"task_id": task, "status": "success"}
    # each push follows its write within the server's re-read period (plus scheduling)
    for (received, _, _), wrote in zip(events[1:4], written, strict=True):
        assert received - wrote < 1.0


def test_kubernetes_index_pushes_without_polling(api_server: ApiServer, tmp_path: Path) -> None:
    with config.new_client_from_config(str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))) as kube:
        settings = ApiSettings(backend="kubernetes", default_namespace="team-a", sse_poll_interval=60)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        backend = KubernetesBackend(settings, kube)
        with serve(create_app(settings, backend)) as url:
            body = {"model": "yolov8n.yaml", "data": "/d.yaml", "epochs": 2, "gpus": 1}
            task = httpx.post(f"{url}/train", json=body, headers=headers).json()["data"]["task_id"]
            name = api_server.emulator.find("yolotrainings")[0]["metadata"]["name"]
            first = next(read_events(url, task, headers))  # a client that goes away after one event...
            assert first[1] == "status"
            eventually(lambda: not backend.index._listeners)  # ...leaves no listener behind

            def trainer() -> None:
                for step in STEPS:
                    time.sleep(0.3)
                    api_server.call(api_server.emulator.patch_status("yolotrainings", "team-a", name, step))

            threading.Thread(target=trainer, daemon=True).start()
            started = time.monotonic()
            events = list(read_events(url, task, headers))
            eventually(lambda: not backend.index._listeners)  # an ended stream leaves no listener behind
    assert [e for _, e, _ in events] == ["status", "status", "status", "status", "end"]
    assert time.monotonic() - started < 10  # woken by the watch, not by the 60 s re-read period
