"""``yoloctl sweep``: submit a hyperparameter sweep from a file, list sweeps, watch one, cancel one.

The file is YAML or JSON: the sweep's spec (``template``, ``parameters``, ``algorithm``, ``objective``,
``maxTrials``...), or a whole ``YoloSweep`` manifest (its ``metadata.name`` and ``namespace`` then name the
sweep). It is checked with the API's own request model (:class:`yolo_api.models.SweepRequest`, a
:class:`yolo_crd.sweep.YoloSweepSpec`) before anything is sent: a bad field is exit 2 with one line naming it.
Exit codes are ``yoloctl``'s: 0 done (watch: the sweep succeeded), 1 the sweep failed or was cancelled, 2 bad
input, 3 the API could not be reached, 4 the API refused (unknown sweep, a name taken, no token).
"""

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from yolo_api.client_http import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    call,
    client,
    local_path,
    say,
)
from yolo_api.client_table import sweep_table, sweep_tsv, trial_table, trial_tsv
from yolo_api.models import SweepRequest
from yolo_crd.wire import one_line

sweep_app = typer.Typer(no_args_is_help=True, help=(
    "Hyperparameter sweeps: many trainings of one template, searched by grid, random or tpe, each trial a task "
    "of its own (docs/sweeps.md)."))
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
UrlOption = Annotated[str, typer.Option(envvar="YOLO_API_URL", help="base URL of the API")]
SweepArg = Annotated[str, typer.Argument(help="a sweep id, any unique start of one, or the sweep's name")]
DEFAULT_URL = "http://127.0.0.1:8000"
FINAL = ("succeeded", "failed")


def read_sweep(path: Path, name: str | None, namespace: str | None) -> dict[str, Any]:
    """The ``POST /sweeps`` body from a spec file (or a YoloSweep manifest), checked; exit 2 with one line if not."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror or exc})", EXIT_USAGE) from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not YAML or JSON ({str(exc).splitlines()[0]})", EXIT_USAGE) from None
    if not isinstance(document, dict):
        raise CliError(f"{path}: expected a mapping with the sweep's spec (template, parameters, ...)", EXIT_USAGE)
    meta: dict[str, Any] = {}
    if document.get("kind") == "YoloSweep" or "apiVersion" in document:  # a manifest for kubectl: take its spec
        meta = document.get("metadata") or {}
        document = document.get("spec") or {}
    body: dict[str, Any] = dict(document)
    for key, value in (("name", name or meta.get("name")), ("namespace", namespace or meta.get("namespace"))):
        if value:
            body[key] = value
    template = body.get("template")
    if isinstance(template, dict):  # relative paths are the caller's, as for `yoloctl submit`
        if isinstance(template.get("model"), str):
            template["model"] = local_path(template["model"], keep_bare_name=True)
        if isinstance(template.get("data"), str):
            template["data"] = local_path(template["data"], keep_bare_name=False)
    try:
        SweepRequest.model_validate(body)
    except ValidationError as exc:
        raise CliError(f"{path}: {one_line(exc)}", EXIT_USAGE) from None
    return body


def resolve_sweep(http: httpx.Client, given: str) -> str:
    """A full sweep id from an id, a unique start of one, or a sweep's name."""
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = call(http, "GET", "/sweeps", params={"offset": offset, "limit": 500}).json()["data"]
        items += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    exact = [item["sweep_id"] for item in items if given in (item["sweep_id"], item["name"])]
    matches = exact or [item["sweep_id"] for item in items if item["sweep_id"].startswith(given)]
    if not matches:
        raise CliError(f"no sweep's id or name is {given!r} (yoloctl sweep list shows them)", EXIT_REFUSED)
    if len(matches) > 1:
        raise CliError(f"{given!r} names several sweeps ({', '.join(matches[:3])}, ...): give its full id",
                       EXIT_REFUSED)
    return str(matches[0])


@sweep_app.command()
def submit(file: Annotated[Path, typer.Option("-f", "--file", help="the sweep's spec (YAML or JSON), or a YoloSweep "
                                              "manifest", show_default=False)],
           url: UrlOption = DEFAULT_URL,
           name: Annotated[str | None, typer.Option(help="the sweep's name (its trials are <name>-000, ...)")] = None,
           namespace: Annotated[str | None, typer.Option(help="Kubernetes namespace (cluster API)")] = None) -> None:
    """Submit a sweep. Prints its id alone on stdout; how to follow it goes to stderr. A spec the API would refuse
    is exit 2 with nothing sent."""
    body = read_sweep(file, name, namespace)
    with client(url) as http:
        data = call(http, "POST", "/sweeps", json=body, usage=(422,)).json()["data"]
    print(data["sweep_id"])
    say(errors, f"submitted sweep {data['name']} (pending); follow it with: yoloctl sweep watch {data['sweep_id'][:8]}")


@sweep_app.command("list")
def list_sweeps(url: UrlOption = DEFAULT_URL,
                state: Annotated[str | None, typer.Option(help="pending, running, succeeded or failed",
                                                          show_default="all")] = None,
                limit: Annotated[int, typer.Option(help="how many (newest first)")] = 50) -> None:
    """Print the sweeps, newest first: a table in a terminal, tab-separated rows when piped."""
    params: dict[str, Any] = {"limit": limit, **({"state": state} if state else {})}
    with client(url) as http:
        page = call(http, "GET", "/sweeps", params=params, usage=(422,)).json()["data"]
    if not console.is_terminal:
        for line in sweep_tsv(page["items"]):
            print(line)
        return
    console.print(sweep_table(page["items"]))
    say(console, f"{len(page['items'])} of {page['total']}; best: the best succeeded trial's final objective")


def headline(data: dict[str, Any]) -> str:
    """One line on where a sweep is: state, trials done, running, best so far."""
    counts = data.get("counts") or {}
    best = data.get("best") or {}
    line = f"sweep {data['name']}: {data['state']}, {data.get('done') or '0/?'} trials done, " \
           f"{counts.get('running', 0)} running"
    if best.get("objective") is not None:
        metric = (data.get("objective") or {}).get("metric") or "objective"
        line += f"; best {metric} {best['objective']:.4f} ({best.get('name')}, task {best.get('taskId')})"
    if data.get("message"):
        line += f" — {data['message']}"
    return line


def follow_sweep(http: httpx.Client, sweep_id: str, *, interval: float, give_up_after: float,
                 out: Console) -> dict[str, Any]:
    """Poll the sweep until it is final, showing a live table of its trials (a line per change when piped)."""
    down_since: float | None = None
    shown = ""
    live = Live(console=out, auto_refresh=False, transient=False) if out.is_terminal else None
    try:
        if live is not None:
            live.start()
        while True:
            try:
                data: dict[str, Any] = call(http, "GET", f"/sweeps/{sweep_id}").json()["data"]
                down_since = None
            except CliError as exc:
                if exc.code != EXIT_UNREACHABLE:
                    raise
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > give_up_after:
                    raise CliError(f"{exc}; gave up after {give_up_after:.0f}s", EXIT_UNREACHABLE) from None
                time.sleep(interval)
                continue
            names = list(data.get("parameters") or [])
            if live is not None:
                metric = (data.get("objective") or {}).get("metric") or ""
                live.update(Group(Text(headline(data)), trial_table(data["trials"], names, metric)), refresh=True)
            elif headline(data) != shown:
                shown = headline(data)
                print(shown, flush=True)
            if data["state"] in FINAL:
                if live is None:
                    for line in trial_tsv(data["trials"], names):
                        print(line)
                return data
            time.sleep(interval)
    finally:
        if live is not None:
            live.stop()


@sweep_app.command()
def watch(sweep: SweepArg, url: UrlOption = DEFAULT_URL,
          interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 2.0,
          give_up_after: Annotated[float, typer.Option(help="seconds to keep retrying while the API is "
                                                       "unreachable")] = 600.0) -> None:
    """Follow a sweep with a live table of its trials, sorted by objective (best first), until it ends; piped, a line
    per change and the trials as tab-separated rows at the end. Exit 0 if it succeeded, 1 if it failed or was
    cancelled."""
    with client(url) as http:
        data = follow_sweep(http, resolve_sweep(http, sweep), interval=interval, give_up_after=give_up_after,
                            out=console)
    if console.is_terminal:
        say(console, headline(data))
    raise typer.Exit(0 if data["state"] == "succeeded" else EXIT_FAILED)


@sweep_app.command()
def cancel(sweep: SweepArg, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a sweep: its running trials are cancelled and no more start. Prints the answer (on a cluster 202,
    cancel requested, until the operator concludes: `yoloctl sweep watch` shows the end)."""
    with client(url) as http:
        response = call(http, "DELETE", f"/sweeps/{resolve_sweep(http, sweep)}", ok=(200, 202))
    console.print_json(json.dumps(response.json(), ensure_ascii=False))
