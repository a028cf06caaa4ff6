"""``yolo-api``: serve the HTTP API with uvicorn."""

from pathlib import Path
from typing import Annotated, Any

import typer

from yolo_api.settings import ApiSettings

app = typer.Typer(add_completion=False, help="Serve the YOLO training API.")


@app.command()
def serve(
    backend: Annotated[str | None, typer.Option(help="local or kubernetes (default: kubernetes in a cluster)")] = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    state_dir: Annotated[Path | None, typer.Option(help="state and outputs (local backend)")] = None,
    namespace: Annotated[str | None, typer.Option(help="namespace to serve (kubernetes backend)")] = None,
    max_parallel: Annotated[int | None, typer.Option(help="trainings at once (local backend)")] = None,
) -> None:
    """Run the API until interrupted. Flags override ``YOLO_API_*`` environment variables."""
    import logging

    import uvicorn

    from yolo_api.app import create_app

    overrides: dict[str, Any] = {k: v for k, v in {
        "backend": backend, "host": host, "port": port, "state_dir": state_dir, "namespace": namespace,
        "max_parallel": max_parallel}.items() if v is not None}
    settings = ApiSettings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, access_log=settings.access_log,
                log_level="info")


def main() -> None:
    """Console entry point."""
    app()
