"""``yoloctl``: a small client for the API (either backend): submit, status, watch, list, compare, logs, cancel,
download, and ``yoloctl sweep ...`` (``client_sweep.py``).

Every failure is one line on stderr and an exit code (see ``yoloctl --help``), never a traceback. Text that
comes from the server or the user (errors, paths, names) is printed as it is: never read as rich markup
(where ``[images/train ...]`` would vanish) and never wrapped by rich (a path stays one piece to copy).
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from yolo_api.client_compare import check_count, check_distinct, compare_table, tsv_lines
from yolo_api.client_delivery import check_submit, describe, export_detail, parse_criteria, parse_formats
from yolo_api.client_download import ARTIFACT_KINDS, check_folder, download_artifacts
from yolo_api.client_http import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    call,
    client,
    follow,
    local_path,
    printable_log,
    resolve_id,
    say,
)
from yolo_api.client_sweep import sweep_app
from yolo_api.client_table import task_table, tsv_rows
from yolo_crd.hyperparameters import HyperValue, parse_hp
from yolo_crd.locations import TASK_PREFIX

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=(
    "Talk to a YOLO training API. Exit codes: 0 done (watch, status: the training succeeded); 1 the training "
    f"failed or was cancelled; {EXIT_USAGE} a command line that cannot be sent (invalid values, which the API "
    f"would refuse with a 422, are checked before sending); {EXIT_UNREACHABLE} the API could not be reached; 4 "
    "the API refused the request (unknown task, missing token, a file it cannot read). The API's "
    "messages are in Chinese when the locale is (LC_ALL, LC_MESSAGES or LANG starting with zh), else in English; "
    "YOLO_LANG=en or YOLO_LANG=zh overrides the locale."))
app.add_typer(sweep_app, name="sweep")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
UrlOption = Annotated[str, typer.Option(envvar="YOLO_API_URL", help="base URL of the API")]
TaskOption = Annotated[str, typer.Argument(help="a task id, or any unique start of one (as `yoloctl list` shows)")]
DEFAULT_URL = "http://127.0.0.1:8000"
WIDE = 130  # columns from which `yoloctl list` shows stage, progress and creation time too


def parse_hyperparameter(pair: str) -> tuple[str, HyperValue]:
    """``KEY=VALUE`` typed by the allow-list (``lr0=.01`` is a float, ``cos_lr=true`` a bool), or a usage error.

    The parsing is the contract's :func:`~yolo_crd.hyperparameters.parse_hp`, shared with the trainer's ``--hp``.
    """
    try:
        return parse_hp(pair)
    except ValueError as exc:
        raise CliError(f"--hp {exc}", EXIT_USAGE) from None


@app.command()
def submit(
    model: Annotated[str, typer.Argument(help="weights (.pt, or s3://.../x.pt), architecture (.yaml, e.g. yolov8n.yaml)"
                                         ", or task/<task> to fine-tune an earlier training's best.pt")],
    data: Annotated[str, typer.Argument(help="dataset YAML (or s3://bucket/prefix/data.yaml); relative paths are "
                                        "taken from this directory")],
    url: UrlOption = DEFAULT_URL,
    epochs: Annotated[int, typer.Option(help="epochs to train")] = 100,
    imgsz: Annotated[int, typer.Option(help="image size")] = 640,
    batch: Annotated[int, typer.Option(help="batch size (-1: automatic)")] = 16,
    gpus: Annotated[int | None, typer.Option(help="GPUs (0: CPU)", show_default="the API's default: 1 on a "
                                             "cluster; locally 1 if the machine has CUDA, else 0")] = None,
    name: Annotated[str | None, typer.Option(help="a name for the training")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace (cluster API)")] = None,
    hp: Annotated[list[str] | None, typer.Option(help="hyperparameter KEY=VALUE, repeatable (e.g. lr0=0.01, "
                                                 "optimizer=SGD, time=1.5 for hours)")] = None,
    output: Annotated[str | None, typer.Option(help="s3://bucket/prefix for the run's artifacts")] = None,
    export: Annotated[list[str] | None, typer.Option(help="export best.pt to these formats after training, each "
                                                     "validated on the val split: onnx, torchscript (comma-separated "
                                                     "or repeated)")] = None,
    export_tolerance: Annotated[float | None, typer.Option(help="the most an export's mAP50-95 may differ from the "
                                                           ".pt model's", show_default="0.01")] = None,
    criteria: Annotated[list[str] | None, typer.Option(help="success criteria METRIC=MIN, comma-separated or repeated "
                                                       "(precision, recall, mAP50, mAP50-95, f1Score; 0 to 1): a "
                                                       "training that misses one fails, its weights kept")] = None,
) -> None:
    """Submit a training. Prints its task id alone on stdout (id=$(yoloctl submit ...)); how to follow it
    goes to stderr. Invalid values are exit code 2 with nothing sent."""
    hyperparameters = dict(parse_hyperparameter(pair) for pair in hp or [])
    body: dict[str, Any] = {"model": local_path(model, keep_bare_name=True), "data": local_path(data,
                            keep_bare_name=False), "epochs": epochs, "imgsz": imgsz, "batch": batch}
    body.update({k: v for k, v in {"gpus": gpus, "name": name, "namespace": namespace, "output": output,
                                   "export": parse_formats(export), "export_tolerance": export_tolerance,
                                   "success_criteria": parse_criteria(criteria)}.items() if v is not None})
    if hyperparameters:
        body["hyperparameters"] = hyperparameters
    check_submit(body)  # what POST /train would refuse, refused here: exit 2, nothing sent
    with client(url) as http:
        if body["model"].startswith(TASK_PREFIX):  # task/<any unique start of a task id>, as elsewhere
            body["model"] = TASK_PREFIX + resolve_id(http, body["model"][len(TASK_PREFIX):])
        task_id = call(http, "POST", "/train", json=body, usage=(422,)).json()["data"]["task_id"]
    print(task_id)
    say(errors, f"submitted (pending); follow it with: yoloctl watch {task_id[:8]}")


@app.command()
def status(task: TaskOption, url: UrlOption = DEFAULT_URL) -> None:
    """Print the task-status envelope as JSON; exit 1 if the training failed, 4 for an unknown task."""
    with client(url) as http:
        response = call(http, "GET", f"/task_status/{resolve_id(http, task)}", ok=(200, 500))
    console.print_json(json.dumps(response.json(), ensure_ascii=False))
    if response.status_code == 500:
        raise typer.Exit(EXIT_FAILED)


def watch_task(http: httpx.Client, task_id: str, *, give_up_after: float = 600.0, out: Console | None = None
               ) -> dict[str, Any]:
    """Follow a task until it ends, showing a live progress bar; return the last envelope."""
    out = out or console
    columns = (TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
               TextColumn("{task.percentage:>5.1f}%"), TextColumn("{task.fields[detail]}", markup=False),
               TimeElapsedColumn())
    body: dict[str, Any] = {}
    with Progress(*columns, console=out, transient=False) as progress:
        bar = progress.add_task("pending", total=100.0, detail="")

        def retrying(note: str) -> None:
            progress.update(bar, detail=note)

        for body in follow(http, task_id, give_up_after=give_up_after, on_retry=retrying):
            data = body.get("data", {})
            state = data.get("status")
            if state == "progress":
                result = data["result"]
                metrics = result.get("metrics") or {}
                detail = f"epoch {result['current_epoch']}/{result['total_epochs']}"
                if "mAP50" in metrics:
                    detail += f"  mAP50 {metrics['mAP50']:.3f}  mAP50-95 {metrics.get('mAP50-95', 0):.3f}"
                detail = export_detail(result) or detail
                progress.update(bar, description=result["stage"], completed=result["progress_value"], detail=detail)
            elif state == "pending":
                progress.update(bar, description="pending", detail=data.get("detail", ""))
            else:
                ended = "cancelled" if data.get("reason") == "Cancelled" else state or "unknown"
                progress.update(bar, description=ended, completed=100.0 if state == "success" else None, detail="")
    if not body:  # the end was delivered before: ask once
        body = call(http, "GET", f"/task_status/{task_id}", ok=(200, 500)).json()
    return dict(body)


@app.command()
def watch(task: TaskOption, url: UrlOption = DEFAULT_URL,
          give_up_after: Annotated[float, typer.Option(help="seconds to keep retrying while the API is "
                                                       "unreachable (it may be restarting)")] = 600.0) -> None:
    """Follow a training with a live progress bar until it ends, then print how it ended. Survives API restarts.
    Exit 0 on success, 1 if it failed or was cancelled, 3 if the API stayed unreachable."""
    with client(url) as http:
        body = watch_task(http, resolve_id(http, task), give_up_after=give_up_after)
    say(console, describe(body))
    raise typer.Exit(0 if body.get("data", {}).get("status") == "success" else EXIT_FAILED)


@app.command("list")
def list_tasks(url: UrlOption = DEFAULT_URL,
               limit: Annotated[int, typer.Option(help="how many (newest first)")] = 20,
               offset: Annotated[int, typer.Option(help="skip this many newest")] = 0,
               state: Annotated[str | None, typer.Option(help="pending, progress, success, failure or cancelled",
                                                         show_default="all")] = None) -> None:
    """Print the trainings, newest first, with full task ids: a table in a terminal, tab-separated rows when
    piped. mAP50 is best.pt's for a succeeded training (best), else the last epoch's (last)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset, **({"status": state} if state else {})}
    with client(url) as http:
        page = call(http, "GET", "/tasks", params=params).json()["data"]
    if not console.is_terminal:
        for line in tsv_rows(page["items"]):
            print(line)
        return
    console.print(task_table(page["items"], wide=console.width >= WIDE))
    say(console, f"{len(page['items'])} of {page['total']}; mAP50: best = best.pt's final value (succeeded), "
                 "last = the last epoch's")


@app.command()
def compare(tasks: Annotated[list[str], typer.Argument(help="2 to 6 task ids, or unique starts of them",
                                                       show_default=False)],
            url: UrlOption = DEFAULT_URL) -> None:
    """Print trainings side by side: state, best epoch, best.pt's final metrics, quality gate and every parameter,
    those that differ marked (*). A table in a terminal, tab-separated rows when piped (a differs column says
    yes). Exit 2 for fewer than two or more than six trainings."""
    check_count(tasks)  # before any request
    with client(url) as http:
        ids = [resolve_id(http, task) for task in tasks]
        check_distinct(ids, tasks)
        data = call(http, "GET", "/tasks/compare", params={"ids": ",".join(ids)}, usage=(422,)).json()["data"]
    if not console.is_terminal:
        for line in tsv_lines(data):
            print(line)
        return
    console.print(compare_table(data))
    say(console, "parameters marked * differ; metrics: best.pt's final ones (the best in bold)")


@app.command()
def logs(task: TaskOption, url: UrlOption = DEFAULT_URL,
         max_bytes: Annotated[int, typer.Option(help="how much of the end of the log")] = 64_000,
         raw: Annotated[bool, typer.Option("--raw", help="as written: colour codes and carriage-return "
                                                         "progress redraws included")] = False) -> None:
    """Print the end of a training's log (local backend): progress lines as they ended, colour codes removed."""
    with client(url) as http:
        text = call(http, "GET", f"/tasks/{resolve_id(http, task)}/logs", params={"max_bytes": max_bytes}).text
    sys.stdout.write(text if raw else printable_log(text))


@app.command()
def cancel(task: TaskOption, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a training and print its envelope; a finished one is left as it is. On a cluster the operator
    concludes a moment later (the API answers 202, cancel requested): `yoloctl watch` shows the verdict."""
    with client(url) as http:
        response = call(http, "DELETE", f"/tasks/{resolve_id(http, task)}", ok=(200, 202))
    console.print_json(json.dumps(response.json(), ensure_ascii=False))


@app.command()
def download(task: TaskOption,
             name: Annotated[str | None, typer.Argument(help="one artifact (best.pt, last.pt, results.csv, args.yaml, "
                                                        "data.yaml, best.onnx, a plot...)",
                                                        show_default="all of them")] = None,
             out: Annotated[Path, typer.Option("-o", "--output-dir", help="folder to write into")] = Path("."),
             kind: Annotated[str | None, typer.Option(help=f"only artifacts of this kind: {', '.join(ARTIFACT_KINDS)}",
                                                      show_default="any")] = None,
             url: UrlOption = DEFAULT_URL) -> None:
    """Download a training's artifacts and check each one's sha256 (a file that does not match is deleted).
    Exports (--kind export) and plots (--kind plot) download like the weights. Exit 0 when all were verified,
    1 on a sha256 mismatch, 3 if the API or object storage could not be reached, 4 for an unknown task or
    artifact."""
    check_folder(out)  # before anything is asked of the API
    if kind is not None and kind not in ARTIFACT_KINDS:
        raise CliError(f"--kind {kind}: expected one of {', '.join(ARTIFACT_KINDS)}", EXIT_USAGE)
    with client(url) as http:
        written = download_artifacts(http, resolve_id(http, task), name, out, kind=kind)
    for path, sha256 in written:
        say(console, f"{path}  sha256 {sha256} verified")


def main() -> None:
    """Console entry point: a failure is one line on stderr and an exit code."""
    try:
        app(prog_name="yoloctl")
    except CliError as exc:
        say(errors, f"yoloctl: {exc}")
        sys.exit(exc.code)
