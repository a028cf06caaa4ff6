"""``yolo-api``: serve the HTTP API with uvicorn.

Every way it can fail to start (a bad setting, an unwritable state directory, a state directory that
another API holds) ends in one line saying what to change, never a traceback.
"""

import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from yolo_api.settings import ApiSettings, default_state_dir
from yolo_crd.wire import one_line

app = typer.Typer(add_completion=False, help="Serve the YOLO training API (and its dashboard at /ui).")
_FLAGS = {"backend", "host", "port", "state_dir", "namespace", "max_parallel", "retain_days"}


def fail(text: str, code: int = 1) -> typer.Exit:
    """Print ``yolo-api: <text>`` to stderr and return the exit to raise."""
    typer.echo(f"yolo-api: {text}", err=True)
    return typer.Exit(code)


def _setting(loc: Sequence[Any]) -> str:
    """A setting as the user gives it: ``--state-dir (YOLO_API_STATE_DIR)``, or its variable alone."""
    name = str(loc[0]) if loc else "settings"
    env = name if name.startswith("YOLO_") else f"YOLO_API_{name.upper()}"  # or another component's variable
    return f"--{name.replace('_', '-')} ({env})" if name in _FLAGS else env


def _setting_errors(exc: ValidationError) -> str:
    return "invalid setting " + one_line(exc, _setting)


def load_settings(overrides: dict[str, Any]) -> ApiSettings:
    """The settings from flags and ``YOLO_API_*``, or a one-line error naming the setting."""
    try:
        return ApiSettings(**overrides)
    except ValidationError as exc:
        raise fail(_setting_errors(exc), 2) from None
    except SettingsError as exc:  # a variable that does not parse (e.g. malformed JSON)
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise fail(f"invalid setting {exc}{cause}", 2) from None


@app.command()
def serve(
    backend: Annotated[str | None, typer.Option(help="local (trainer processes on this machine) or kubernetes",
                                                show_default="kubernetes inside a cluster, else local")] = None,
    host: Annotated[str | None, typer.Option(help="address to bind", show_default="127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on", show_default="8000")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="local backend: state database, token, logs and runs",
                                                   show_default=str(default_state_dir()))] = None,
    namespace: Annotated[str | None, typer.Option(help="kubernetes backend: the one namespace to serve",
                                                  show_default="all namespaces")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="local backend: trainings run at once",
                                                     show_default="1")] = None,
    retain_days: Annotated[float | None, typer.Option(
        help="local backend: delete finished tasks (row, run directory with its weights, log) this many days after "
             "they finish", show_default="kept")] = None,
) -> None:
    """Run the API until Ctrl+C. Flags override YOLO_API_* environment variables (e.g.
    YOLO_API_ALLOWED_ROOTS=/data:/models). On Ctrl+C, local trainings keep running and the next start
    over the same --state-dir re-attaches to them (the API says so, with how to stop them)."""
    import uvicorn

    from yolo_api.app import create_app
    from yolo_api.backends.local_host import StateDirInUse

    overrides: dict[str, Any] = {k: v for k, v in {
        "backend": backend, "host": host, "port": port, "state_dir": state_dir, "namespace": namespace,
        "max_parallel": max_parallel, "retain_days": retain_days}.items() if v is not None}
    settings = load_settings(overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        application = create_app(settings)
        claim = getattr(application.state.backend, "claim", None)
        if claim is not None:
            claim()  # the state directory's lock, taken now so that a second API says so in one line
    except StateDirInUse as exc:
        raise fail(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise fail(f"cannot use state directory {settings.state_dir} ({exc}): give a writable --state-dir") from None
    except ValueError as exc:  # e.g. an empty token file
        raise fail(str(exc)) from None
    uvicorn.run(application, host=settings.host, port=settings.port, access_log=settings.access_log,
                log_level="info")


def main() -> None:
    """Console entry point."""
    app(sys.argv[1:], prog_name="yolo-api")
