"""``yoloctl``: a small client for the API (either backend): submit, status, watch, list, cancel."""

import json
import os
import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, help="Talk to a YOLO training API.")
console = Console()
UrlOption = Annotated[str, typer.Option(envvar="YOLO_API_URL", help="base URL of the API")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _client(url: str) -> httpx.Client:
    token = os.environ.get("YOLO_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=30.0, headers=headers)


def _show(body: dict[str, Any]) -> None:
    console.print_json(json.dumps(body, ensure_ascii=False))


def watch_task(
    http: httpx.Client, task_id: str, *, interval: float = 1.0, out: Console | None = None
) -> dict[str, Any]:
    """Poll ``/task_status`` until the task ends, showing a live progress bar; return the last envelope."""
    out = out or console
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        bar = progress.add_task("pending", total=100.0, detail="")
        while True:
            body = http.get(f"/task_status/{task_id}").json()
            data = body.get("data", {})
            state = data.get("status")
            if state == "progress":
                result = data["result"]
                metrics = result.get("metrics") or {}
                detail = f"epoch {result['current_epoch']}/{result['total_epochs']}"
                if "mAP50" in metrics:
                    detail += f"  mAP50 {metrics['mAP50']:.3f}  mAP50-95 {metrics.get('mAP50-95', 0):.3f}"
                progress.update(bar, description=result["stage"], completed=result["progress_value"], detail=detail)
            elif state == "pending":
                progress.update(bar, description="pending", detail=data.get("detail", ""))
            else:
                progress.update(bar, description=state or "unknown", completed=100.0 if state == "success" else None)
                return dict(body)
            time.sleep(interval)


@app.command()
def submit(
    model: str, data: str, url: UrlOption = DEFAULT_URL, epochs: int = 100, imgsz: int = 640, batch: int = 16,
    gpus: int = 1, name: str | None = None, namespace: str | None = None,
    hp: Annotated[list[str] | None, typer.Option(help="hyperparameter KEY=VALUE (JSON value), repeatable")] = None,
) -> None:
    """Submit a training and print its task id."""
    body: dict[str, Any] = {"model": model, "data": data, "epochs": epochs, "imgsz": imgsz, "batch": batch,
                            "gpus": gpus}
    body.update({k: v for k, v in {"name": name, "namespace": namespace}.items() if v})
    if hp:
        body["hyperparameters"] = {k: json.loads(v) if v[:1] in "0123456789-[{tfn\"" else v
                                   for k, _, v in (pair.partition("=") for pair in hp)}
    with _client(url) as http:
        response = http.post("/train", json=body)
    _show(response.json())
    raise typer.Exit(0 if response.status_code == 200 else 1)


@app.command()
def status(task_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Print the task-status envelope."""
    with _client(url) as http:
        response = http.get(f"/task_status/{task_id}")
    _show(response.json())
    raise typer.Exit(0 if response.status_code == 200 else 1)


@app.command()
def watch(task_id: str, url: UrlOption = DEFAULT_URL, interval: float = 2.0) -> None:
    """Follow a training with a live progress bar until it ends; exit 1 if it failed."""
    with _client(url) as http:
        body = watch_task(http, task_id, interval=interval)
    _show(body)
    raise typer.Exit(0 if body.get("data", {}).get("status") == "success" else 1)


@app.command("list")
def list_tasks(url: UrlOption = DEFAULT_URL, limit: int = 20) -> None:
    """A table of the newest trainings."""
    with _client(url) as http:
        items = http.get("/tasks", params={"limit": limit}).json()["data"]["items"]
    table = Table("task id", "name", "status", "stage", "epoch", "progress", "mAP50")
    for item in items:
        map50 = item.get("mAP50")
        table.add_row(item["task_id"], item["name"], item["status"], item.get("stage") or "",
                      f"{item['current_epoch']}/{item.get('total_epochs') or '?'}", f"{item['progress']:.1f}%",
                      "" if map50 is None else f"{map50:.3f}")
    console.print(table)


@app.command()
def cancel(task_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a training."""
    with _client(url) as http:
        response = http.delete(f"/tasks/{task_id}")
    _show(response.json())
    raise typer.Exit(0 if response.status_code == 200 else 1)


def main() -> None:
    """Console entry point."""
    app()
