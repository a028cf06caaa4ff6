"""Servers for the benchmarks, each in its own process: ``python -m bench.serve KIND --port P ...``.

KIND is ``emulator`` (the emulated API server preloaded with N trainings), ``ours`` (the real API,
Kubernetes backend), ``ceiling`` (a minimal FastAPI endpoint returning a constant of the same size) or
``naive`` (GETs the resource from the API server on every request). The three HTTP servers run with the
same uvicorn settings.
"""

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROGRESS = {"phase": "Running", "stage": "training", "currentEpoch": 5, "totalEpochs": 20, "progress": 25.0,
            "metrics": {"epoch": 5, "precision": 0.61, "recall": 0.52, "mAP50": 0.55, "mAP50-95": 0.31}}


def run_emulator(port: int, count: int) -> None:
    """Serve an emulated API server with ``count`` YoloTrainings until killed; print their ids as JSON."""
    sys.path.insert(0, str(ROOT / "tests"))
    from apiserver import ApiServer

    server = ApiServer()
    server.stop_serving()
    server.port = port
    server.start_serving()

    async def fill() -> list[dict[str, str]]:
        ids = []
        for index in range(count):
            name = f"bench-{index:05d}"
            key = ("yolo-operator.io/v1alpha1/yolotrainings", "bench", name)
            obj = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining",
                   "metadata": {"name": name, "namespace": "bench", "uid": f"00000000-0000-4000-8000-{index:012d}",
                                "resourceVersion": str(index + 1), "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 20}, "status": PROGRESS}
            server.emulator.objects[key] = obj
            ids.append({"uid": obj["metadata"]["uid"], "name": name})
        return ids

    ids = server.call(fill())
    print(json.dumps(ids), flush=True)
    threading.Event().wait()


def ceiling_app(size_like: dict[str, Any]) -> Any:
    """A minimal FastAPI endpoint returning a constant body of the same size as ours."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/task_status/{task_id}")
    async def constant(task_id: str) -> dict[str, Any]:
        return size_like

    return app


def naive_app(apiserver: str, names: dict[str, str]) -> Any:
    """What a home-grown service often does: one API-server GET per poll, then the envelope."""
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse
    from kubernetes import client

    from yolo_crd.envelope import task_envelope
    from yolo_crd.status import TrainingStatus

    configuration = client.Configuration()
    configuration.host = apiserver
    configuration.connection_pool_maxsize = 50
    api = client.CustomObjectsApi(client.ApiClient(configuration))
    app = FastAPI()

    @app.get("/task_status/{task_id}")
    async def status(task_id: str) -> JSONResponse:
        obj = await run_in_threadpool(api.get_namespaced_custom_object, "yolo-operator.io", "v1alpha1", "bench",
                                      "yolotrainings", names[task_id])
        code, body = task_envelope(task_id, TrainingStatus.model_validate(obj.get("status") or {}))
        return JSONResponse(body, status_code=code)

    return app


def ours_app(apiserver: str) -> Any:
    """The real API over the Kubernetes backend, pointed at the emulator."""
    from kubernetes import client

    from yolo_api.app import create_app
    from yolo_api.backends.kubernetes import KubernetesBackend
    from yolo_api.settings import ApiSettings

    configuration = client.Configuration()
    configuration.host = apiserver
    settings = ApiSettings(backend="kubernetes")
    return create_app(settings, backend=KubernetesBackend(settings, client.ApiClient(configuration)))


def main() -> None:
    """Start one server."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["emulator", "ours", "ceiling", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--apiserver", default="")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--ids", type=Path, help="JSON file of the emulator's trainings (uid, name)")
    args = parser.parse_args()
    if args.kind == "emulator":
        run_emulator(args.port, args.count)
        return
    import uvicorn

    ids = json.loads(args.ids.read_text()) if args.ids else []
    if args.kind == "ours":
        app = ours_app(args.apiserver)
    elif args.kind == "naive":
        app = naive_app(args.apiserver, {item["uid"]: item["name"] for item in ids})
    else:
        from yolo_crd.envelope import task_envelope
        from yolo_crd.status import TrainingStatus

        app = ceiling_app(task_envelope(ids[0]["uid"], TrainingStatus.model_validate(PROGRESS))[1])
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, access_log=False,
                                              log_level="warning")).serve())


if __name__ == "__main__":
    main()
