"""Command line of the trainer: ``python -m yolo_trainer`` (in a Job, configured by ``YOLO_TRAINER_*``)
or by hand with flags, which override the environment.
"""

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from yolo_crd.hyperparameters import parse_hp
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.wire import one_line
from yolo_trainer.errors import EXIT_INVALID_INPUT
from yolo_trainer.settings import TrainerSettings

app = typer.Typer(add_completion=False, help="Train a YOLOv8 model and report its status.")


def hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """``--hp KEY=VALUE`` pairs typed and checked by the contract's :func:`parse_hp`, as ``yoloctl`` does them."""
    values: dict[str, Any] = {}
    for pair in pairs:
        try:
            key, value = parse_hp(pair)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--hp") from None
        values[key] = value
    return values


@app.command()
def train(
    model: Annotated[str | None, typer.Option(help="weights (.pt) or architecture (.yaml)")] = None,
    data: Annotated[str | None, typer.Option(help="dataset YAML")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    imgsz: Annotated[int | None, typer.Option()] = None,
    batch: Annotated[int | None, typer.Option()] = None,
    gpus: Annotated[int | None, typer.Option(help="0 trains on CPU")] = None,
    device: Annotated[str | None, typer.Option()] = None,
    hp: Annotated[list[str] | None, typer.Option(help="hyperparameter KEY=VALUE, repeatable")] = None,
    sink: Annotated[str | None, typer.Option(help="kubernetes, local or log")] = None,
    state_db: Annotated[Path | None, typer.Option(help="SQLite state file (local sink)")] = None,
    task_id: Annotated[str | None, typer.Option()] = None,
    output_dir: Annotated[Path | None, typer.Option(help="root of run directories")] = None,
) -> None:
    """Run one training to the end and exit 0 on success, 2 on invalid input, 1 on a training error, 3 when the
    final status could not be delivered. Outputs go to <output-dir>/<task-id>; a run directory that holds a
    finished run of another configuration is refused (give another --task-id or --output-dir)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {k: v for k, v in {"sink": sink, "state_db": state_db, "task_id": task_id,
                                   "output_dir": output_dir}.items() if v is not None}
    try:
        settings = TrainerSettings(**overrides)
        fields: dict[str, Any] = {k: v for k, v in {"model": model, "data": data, "epochs": epochs, "imgsz": imgsz,
                                    "batch": batch, "gpus": gpus, "device": device}.items() if v is not None}
        if hp:
            fields["hyperparameters"] = hyperparameters(hp)
        if settings.spec is None and not {"model", "data"} <= fields.keys():
            typer.echo("yolo-trainer: nothing to train: give --model and --data (or YOLO_TRAINER_SPEC as JSON); "
                       "see --help", err=True)
            raise typer.Exit(EXIT_INVALID_INPUT)
        base = settings.spec.model_dump() if settings.spec else {}
        spec = YoloTrainingSpec.model_validate({**base, **fields})
    except ValidationError as exc:
        typer.echo(f"yolo-trainer: invalid training spec: {one_line(exc)}", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    except SettingsError as exc:
        typer.echo(f"yolo-trainer: invalid YOLO_TRAINER_* setting: {exc} ({exc.__cause__})", err=True)
        raise typer.Exit(EXIT_INVALID_INPUT) from None
    from yolo_trainer.runner import run

    raise typer.Exit(run(settings, spec))


def main() -> None:
    """Console entry point."""
    app(sys.argv[1:])
