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


def finished_status(epochs: int = 300) -> dict[str, Any]:
    """The status of a finished ``epochs``-epoch training, as the trainer and the operator leave it."""
    import random

    from yolo_crd.history import epoch_metrics
    from yolo_crd.status import FinalMetrics, StopReason
    from yolo_trainer.progress import ProgressTracker

    rng = random.Random(0)
    columns = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
               "train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss")
    history = [epoch_metrics(e, {c: rng.uniform(0.1, 3.0) for c in columns}) for e in range(1, epochs + 1)]
    tracker = ProgressTracker(epochs)
    status: dict[str, Any] = {}
    status.update(tracker.started(epochs - 1, epochs, history[:-1]))
    status.update(tracker.epoch_done(history[-1], epochs, last=True) or {})
    status.update(tracker.completed(FinalMetrics.from_validation(0.61, 0.42, 0.7, 0.6),
                                    "/outputs/run/weights/best.pt", "/outputs/run", StopReason.EPOCHS))
    conditions = [{"type": kind, "status": state, "reason": "Completed", "message": "training completed",
                   "lastTransitionTime": "2026-01-01T02:00:00Z"}
                  for kind, state in (("Succeeded", "True"), ("Running", "False"), ("Scheduled", "True"))]
    return {**status, "phase": "Succeeded", "jobName": "bench-00000000", "observedGeneration": 1,
            "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T02:00:00Z", "conditions": conditions}


def run_emulator(port: int, count: int, finished: bool = False) -> None:
    """Serve an emulated API server with ``count`` YoloTrainings until killed; print their ids as JSON.

    ``finished``: every training is a finished 300-epoch run (one status object shared by all of them, so
    the emulator's own memory stays small; every list still serialises each one).
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from apiserver import ApiServer

    server = ApiServer()
    status = finished_status() if finished else PROGRESS
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
                   "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 20}, "status": status}
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
    parser.add_argument("--finished", action="store_true", help="emulator: finished 300-epoch trainings")
    parser.add_argument("--ids", type=Path, help="JSON file of the emulator's trainings (uid, name)")
    args = parser.parse_args()
    if args.kind == "emulator":
        run_emulator(args.port, args.count, args.finished)
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

        body = finished_status() if args.finished else PROGRESS
        app = ceiling_app(task_envelope(ids[0]["uid"], TrainingStatus.model_validate(body))[1])
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, access_log=False,
                                              log_level="warning")).serve())


if __name__ == "__main__":
    main()
