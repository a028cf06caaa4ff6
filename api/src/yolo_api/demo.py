"""``make demo``: the whole loop on one machine, with no cluster.

Generates a small synthetic dataset, starts ``yolo-api --backend local`` on a free loopback port, submits
a training with ``POST /train``, follows ``/task_status`` with a live progress bar, and prints the final
metrics and the weights path. Exits non-zero if the training failed.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from yolo_api.client import watch_task

console = Console()

TRAIN_BODY: dict[str, Any] = {
    # From scratch (no pretrained weights can be downloaded here), small images, CPU: enough for the
    # model to visibly learn two shapes in a couple of minutes on 2 cores.
    "model": "yolov8n.yaml", "epochs": 30, "imgsz": 64, "batch": 32, "gpus": 0, "name": "demo",
    "hyperparameters": {"optimizer": "SGD", "lr0": 0.02, "warmup_epochs": 1, "seed": 0, "workers": 2},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API exited with code {server.returncode}; see .demo/api.log")
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("the API did not become ready in time; see .demo/api.log")


def main() -> int:
    """Run the demo; return the process exit code."""
    from yolo_trainer.synthetic import make_dataset

    root = Path(".demo").absolute()
    data = root / "data" / "data.yaml"
    if not data.exists():
        console.print("generating a synthetic dataset (256 train / 64 val images, 2 shapes)...")
        make_dataset(root / "data", classes=2, train=256, val=64, imgsz=64)
    state = root / f"state-{int(time.time())}"
    port = _free_port()
    env = {**os.environ, "YOLO_API_ALLOWED_ROOTS": f'["{root}"]'}
    command = [sys.executable, "-m", "yolo_api", "--backend", "local", "--host", "127.0.0.1", "--port", str(port),
               "--state-dir", str(state)]
    log = (root / "api.log").open("ab")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as http:
            _wait_ready(http, server)
            console.print(f"API (local backend) on http://127.0.0.1:{port}, state in {state}")
            submitted = http.post("/train", json={**TRAIN_BODY, "data": str(data)}).json()
            console.print_json(data=submitted)
            task_id = submitted["data"]["task_id"]
            try:
                final = watch_task(http, task_id, interval=1.0)
            except KeyboardInterrupt:
                http.delete(f"/tasks/{task_id}")
                raise
        console.print_json(data=final)
        if final["data"]["status"] != "success":
            console.print(f"[red]training failed: {final['data'].get('error')}")
            return 1
        result = final["data"]["result"]
        console.print(f"[green]final metrics[/]: {result['final_metrics']}")
        console.print(f"[green]weights[/]: {result['weights_path']}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
