"""``yoloctl``'s part of shipping a model: ``submit --export/--export-tolerance/--criteria``, and how ``watch``
tells a training's end (:func:`describe`), with its quality gate and exports, and its export stage.

A submit is checked here with the contract itself (:class:`yolo_api.models.TrainRequest`, the body ``POST /train``
validates) before anything is sent: an unknown format, an unknown metric or a threshold outside 0..1 is one line
naming the flag, and exit code 2, with nothing submitted. Flags are named as the user typed them (``--criteria
mAP50``), not as the body spells them (``success_criteria.mAP50``).
"""

from collections.abc import Sequence
from typing import Any, Final

from pydantic import ValidationError

from yolo_api.client_http import EXIT_USAGE, CliError
from yolo_api.models import TrainRequest
from yolo_crd.wire import problem

#: The command-line spelling of each body field a submit sends.
FLAGS: Final = {"model": "MODEL", "data": "DATA", "export": "--export", "export_tolerance": "--export-tolerance",
                "success_criteria": "--criteria", "hyperparameters": "--hp"}


def parse_formats(values: Sequence[str] | None) -> list[str] | None:
    """``--export onnx,torchscript`` (or the flag repeated): the formats, lower-cased, in the order given."""
    if not values:
        return None
    formats = [part.strip().lower() for value in values for part in value.split(",")]
    if not all(formats):
        raise CliError(f"--export {','.join(values)!r}: expected formats separated by commas, e.g. onnx,torchscript",
                       EXIT_USAGE)
    return formats


def parse_criteria(values: Sequence[str] | None) -> dict[str, float] | None:
    """``--criteria mAP50=0.5,recall=0.6`` (or the flag repeated): each metric's minimum, as numbers. Which metrics
    exist and their bounds are the contract's to say (:func:`check_submit`)."""
    if not values:
        return None
    criteria: dict[str, float] = {}
    for pair in (part.strip() for value in values for part in value.split(",")):
        metric, sep, text = pair.partition("=")
        if not sep or not metric.strip() or not text.strip():
            raise CliError(f"--criteria {pair!r}: expected METRIC=VALUE, e.g. mAP50=0.5,recall=0.6", EXIT_USAGE)
        try:
            value = float(text)
        except ValueError:
            raise CliError(f"--criteria {metric.strip()}: {text.strip()!r} is not a number (a minimum from 0 to 1)",
                           EXIT_USAGE) from None
        if metric.strip() in criteria:
            raise CliError(f"--criteria names {metric.strip()} twice", EXIT_USAGE)
        criteria[metric.strip()] = value
    return criteria


def _flag(loc: Sequence[Any], body: dict[str, Any]) -> str:
    """The flag (and the value or key in it) that a pydantic error's ``loc`` points at."""
    parts = [str(part) for part in loc]
    head = FLAGS.get(parts[0], f"--{parts[0].replace('_', '-')}") if parts else ""
    if parts[:1] == ["export"] and len(parts) > 1:  # the index in the list says nothing: the format does
        return f"--export {body['export'][int(parts[1])]}"
    return " ".join([head, *parts[1:]])


def check_submit(body: dict[str, Any]) -> None:
    """Validate a submit's body as ``POST /train`` will; every problem in one line naming the flags, exit code 2."""
    try:
        TrainRequest.model_validate(body)
    except ValidationError as exc:
        problems = [": ".join(filter(None, (_flag(error["loc"], body), problem(error)))) for error in exc.errors()]
        raise CliError("; ".join(problems), EXIT_USAGE) from None


def export_detail(result: dict[str, Any]) -> str | None:
    """The progress bar's detail while the trainer exports: ``onnx validating (1/2 done)``; None otherwise."""
    export = result.get("export")
    if result.get("stage") != "exporting" or not isinstance(export, dict):
        return None
    doing = " ".join(str(part) for part in (export.get("format"), export.get("step")) if part)
    return f"{doing or 'exporting'} ({export.get('done', 0)}/{export.get('total', 0)} done)"


def _figure(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "n/a"


def delivery_lines(data: dict[str, Any]) -> list[str]:
    """What ``watch`` adds after a training's end: the quality gate (when it had criteria, unless the error says
    it already), each export with its validation against the ``.pt`` model, and for a failure what was kept."""
    lines: list[str] = []
    gate = data.get("quality_gate")
    if isinstance(gate, dict) and gate.get("message") and gate["message"] not in str(data.get("error") or ""):
        lines.append(str(gate["message"]))
    result = data.get("result") or {}
    for export in result.get("exports") or data.get("exports") or []:
        lines.append(f"export {export.get('format')}: {export.get('artifact')}  mAP50-95 "
                     f"{_figure(export.get('mAP50-95'))} (.pt {_figure(export.get('reference_mAP50-95'))}, "
                     f"difference {_figure(export.get('delta_mAP50-95'))})")
    kept = [str(item.get("name")) for item in data.get("artifacts") or []
            if item.get("kind") in ("weights", "export")
            or (not item.get("kind") and str(item.get("name")).endswith(".pt"))]  # an older trainer's: no kind
    if data.get("status") == "failure" and kept:
        lines.append(f"kept: {', '.join(kept)} (yoloctl download {str(data.get('task_id'))[:8]})")
    return lines


def describe(body: dict[str, Any]) -> str:
    """How a training ended, from its envelope, for a person: metrics of best.pt and where it is, or why it
    failed (a cancelled training says so once, not "(Cancelled): cancelled"); then its quality gate and exports
    when it had them (:func:`delivery_lines`)."""
    data = body.get("data", {})
    return "\n".join([_ending(data), *delivery_lines(data)])


def _ending(data: dict[str, Any]) -> str:
    if data.get("status") == "success":
        result = data["result"]
        metrics = "  ".join(f"{key} {value}" for key, value in result["final_metrics"].items())
        stop = f" (stopped: {result['stop_reason']})" if result.get("stop_reason") else ""
        return f"success{stop}, final metrics of best.pt: {metrics}\nweights: {result['weights_path']}"
    if data.get("status") == "failure":
        reason, error = str(data.get("reason") or ""), str(data.get("error") or "")
        if reason == "Cancelled":
            return "cancelled" if error.lower() in ("", "cancelled") else f"cancelled: {error}"
        if not error or error.lower() == reason.lower():
            return f"failed ({reason})" if reason else "failed"
        return f"failed ({reason}): {error}" if reason else f"failed: {error}"
    return str(data.get("status"))
