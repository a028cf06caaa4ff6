"""``yoloctl``: a small client for the API (either backend): submit, status, watch, list, cancel."""

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
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


def resolve_token() -> str | None:
    """The bearer token: ``YOLO_API_TOKEN``, else the file ``YOLO_API_TOKEN_FILE``, else the local API's
    generated ``.yolo-state/api-token`` when it exists. Never a command-line flag: those show in ``ps``."""
    token = os.environ.get("YOLO_API_TOKEN")
    if token:
        return token
    path = Path(os.environ.get("YOLO_API_TOKEN_FILE") or ".yolo-state/api-token")
    return path.read_text().strip() or None if path.is_file() else None


def _client(url: str) -> httpx.Client:
    token = resolve_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=30.0, headers=headers)


def _show(body: dict[str, Any]) -> None:
    console.print_json(json.dumps(body, ensure_ascii=False))


def _call(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One request; on any answer but 200, print its envelope (e.g. 401: no token) and exit 1."""
    with _client(url) as http:
        response = http.request(method, path, **kwargs)
    body = dict(response.json())
    if response.status_code != 200:
        _show(body)
        raise typer.Exit(1)
    return body


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from the lines of a ``text/event-stream`` body (comments and ids skipped)."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def envelopes(http: httpx.Client, task_id: str, interval: float) -> Iterator[dict[str, Any]]:
    """The task's envelopes as they change: pushed by the events endpoint, else polled every ``interval``."""
    last: dict[str, Any] | None = None
    try:
        with http.stream("GET", f"/task_status/{task_id}/events", timeout=httpx.Timeout(30.0, read=60.0),
                         headers={"Accept": "text/event-stream"}) as response:
            if response.status_code == 200:
                for event, data in sse_events(response.iter_lines()):
                    if event == "status":
                        last = json.loads(data)
                        yield last
                    elif event == "end":
                        return
    except httpx.TransportError as exc:  # stream broken or unsupported: poll instead
        console.print(f"[yellow]live updates unavailable ({type(exc).__name__}); polling", style="dim")
    while True:
        body = http.get(f"/task_status/{task_id}").json()
        if body != last:
            yield body
        last = body
        if body.get("data", {}).get("status") not in ("pending", "progress"):
            return
        time.sleep(interval)


def watch_task(
    http: httpx.Client, task_id: str, *, interval: float = 1.0, out: Console | None = None
) -> dict[str, Any]:
    """Follow a task until it ends, showing a live progress bar; return the last envelope."""
    out = out or console
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    body: dict[str, Any] = {}
    with Progress(*columns, console=out, transient=False) as progress:
        bar = progress.add_task("pending", total=100.0, detail="")
        for body in envelopes(http, task_id, interval):
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
    _show(_call(url, "POST", "/train", json=body))


@app.command()
def status(task_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Print the task-status envelope; exit 1 for an unknown or failed task."""
    _show(_call(url, "GET", f"/task_status/{task_id}"))


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
    items = _call(url, "GET", "/tasks", params={"limit": limit})["data"]["items"]
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
    _show(_call(url, "DELETE", f"/tasks/{task_id}"))


def main() -> None:
    """Console entry point."""
    app()
