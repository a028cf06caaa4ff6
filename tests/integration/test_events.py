"""Server-Sent Events over real HTTP, from the local backend with stand-in trainers (tests/standin.py) and
from the Kubernetes index: the same envelopes as polling, JSON on every event, ids that only grow and
survive reconnection (``Last-Event-ID``), ``retry:``, 204 once the end was delivered, and one stream for
every row of the dashboard.
"""

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent
from kubernetes import config

from apiserver import ApiServer
from emulator import ADMIN_TOKEN
from fakes import AUTH, TOKEN
from serving import serve
from standin import standin_python
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.settings import ApiSettings

STEPS: list[dict[str, Any]] = [
    {"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 2, "progress": 50.0},
    {"phase": "Running", "stage": "training", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0},
    {"phase": "Succeeded", "stage": "completed", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0,
     "weightsPath": "/w/best.pt",
     "finalMetrics": {"mAP50": 0.9, "mAP50-95": 0.6, "precision": 0.8, "recall": 0.9, "f1_score": 0.8471}},
]


def events(url: str, path: str, headers: dict[str, str], last_id: str | None = None) -> Iterator[ServerSentEvent]:
    extra = {"Last-Event-ID": last_id} if last_id else {}
    with httpx.stream("GET", f"{url}{path}", headers={**headers, **extra}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield from EventSource(response).iter_sse()


def read_events(url: str, task_id: str, headers: dict[str, str]) -> Iterator[tuple[float, str, str]]:
    for event in events(url, f"/task_status/{task_id}/events", headers):
        yield time.monotonic(), event.event, event.data


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("STANDIN_EPOCH_SECONDS", "0.2")
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, poll_interval=0.05,
                           sse_poll_interval=0.05, max_parallel=8, local_gpus=0, allowed_roots=[tmp_path],
                           trainer_python=standin_python(tmp_path))
    (tmp_path / "d.yaml").write_text("train: x\n")
    with serve(create_app(settings)) as url:
        yield url


def submit(url: str, tmp_path: Path, epochs: int = 3) -> str:
    body = {"model": "yolov8n.yaml", "data": str(tmp_path / "d.yaml"), "epochs": epochs}
    return str(httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"])


def test_events_push_every_change_as_json_with_growing_ids_and_end(local: str, tmp_path: Path) -> None:
    task = submit(local, tmp_path)
    seen = list(events(local, f"/task_status/{task}/events", AUTH))
    assert all(isinstance(json.loads(event.data), dict) for event in seen)  # JSON on every event, end included
    assert seen[0].retry == 3000 and all(event.retry is None for event in seen[1:])
    ids = [int(event.id) for event in seen]
    assert ids == sorted(ids) and len(set(ids[:-1])) == len(ids) - 1  # the end repeats the last status's id
    statuses = [json.loads(event.data) for event in seen if event.event == "status"]
    assert statuses[0]["data"]["status"] in ("pending", "progress")
    assert statuses[-1]["data"]["status"] == "success"
    assert statuses[-1] == httpx.get(f"{local}/task_status/{task}", headers=AUTH).json()  # exactly the poll
    assert seen[-1].event == "end" and json.loads(seen[-1].data) == {"task_id": task, "status": "success"}
    assert httpx.get(f"{local}/task_status/{task}/events").status_code == 401
    assert httpx.get(f"{local}/task_status/nope/events", headers=AUTH).status_code == 404


def test_a_reconnecting_client_resumes_after_its_last_event_id_and_gets_204_after_the_end(local: str,
                                                                                        tmp_path: Path) -> None:
    task = submit(local, tmp_path, epochs=6)
    path = f"/task_status/{task}/events"
    stream = events(local, path, AUTH)
    first = [next(stream), next(stream)]  # the client goes away after two events...
    stream.close()
    resumed = list(events(local, path, AUTH, last_id=first[-1].id))  # ...and comes back with Last-Event-ID
    assert int(resumed[0].id) > int(first[-1].id) and resumed[0].retry == 3000
    assert json.loads(resumed[0].data) != json.loads(first[-1].data)  # nothing it already had is resent
    assert resumed[-1].event == "end"
    again = httpx.get(f"{local}{path}", headers={**AUTH, "Last-Event-ID": resumed[-1].id})
    assert again.status_code == 204  # a standard EventSource stops reconnecting
    late = list(events(local, path, AUTH, last_id=first[0].id))  # a client that missed the end gets it
    assert [event.event for event in late][-2:] == ["status", "end"]


def test_one_stream_carries_every_row(local: str, tmp_path: Path) -> None:
    stream = events(local, "/tasks/events", AUTH)
    ready = next(stream)
    assert ready.event == "ready" and int(ready.id) == json.loads(ready.data)["version"] and ready.retry == 3000
    tasks = {submit(local, tmp_path, epochs=2) for _ in range(3)}
    rows: dict[str, dict[str, Any]] = {}
    ids: list[int] = []
    for event in stream:
        assert event.event == "task"
        ids.append(int(event.id))
        row = json.loads(event.data)
        rows[row["task_id"]] = row
        if len(rows) == 3 and all(r["state"] == "success" for r in rows.values()):
            break
    stream.close()
    assert set(rows) == tasks and ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(row["can_cancel"] is False and row["phase"] == "Succeeded" for row in rows.values())
    middle = ids[len(ids) // 2]
    resumed = events(local, "/tasks/events", AUTH, last_id=str(middle))
    assert next(resumed).event == "ready"
    replayed = next(resumed)
    assert int(replayed.id) > middle  # only what changed after the last event the client had
    resumed.close()
    assert httpx.get(f"{local}/tasks/events").status_code == 401


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


def test_the_stream_ends_only_on_a_final_verdict(api_server: ApiServer, tmp_path: Path) -> None:
    """The bug: a cancel asked for (the annotation) and a trainer saying ``completed`` without final metrics
    each ended the stream as a failure, though neither is a verdict: the trainer may have stored its weights
    (a success), and only the operator concludes."""
    with config.new_client_from_config(str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))) as kube:
        settings = ApiSettings(backend="kubernetes", default_namespace="team-a", sse_poll_interval=60)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with serve(create_app(settings, KubernetesBackend(settings, kube))) as url:
            body = {"model": "yolov8n.yaml", "data": "/d.yaml", "epochs": 2, "gpus": 1}
            task = httpx.post(f"{url}/train", json=body, headers=headers).json()["data"]["task_id"]
            name = api_server.emulator.find("yolotrainings")[0]["metadata"]["name"]
            seen: list[tuple[str, dict[str, Any]]] = []

            def follow() -> None:
                seen.extend((kind, json.loads(data)) for _, kind, data in read_events(url, task, headers))

            reader = threading.Thread(target=follow, daemon=True)
            reader.start()
            eventually(lambda: seen)
            assert httpx.delete(f"{url}/tasks/{task}", headers=headers).status_code == 202
            api_server.call(api_server.emulator.patch_status("yolotrainings", "team-a", name, {
                "phase": "Running", "stage": "completed", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0}))
            eventually(lambda: any(kind == "status" and event["data"]["status"] == "progress" for kind, event in seen))
            assert [kind for kind, _ in seen if kind == "end"] == []
            api_server.call(api_server.emulator.patch_status("yolotrainings", "team-a", name, {
                "phase": "Failed", "reason": "Cancelled", "message": "cancelled"}))
            reader.join(timeout=30)
    kinds = [kind for kind, _ in seen]
    assert kinds[-1] == "end" and kinds.count("end") == 1 and seen[-1][1]["status"] == "failure"
    assert seen[-2][1]["data"]["status"] == "failure" and seen[-2][1]["data"]["error"] == "cancelled"
