"""yoloctl's parts without a server: typed hyperparameters, caller-relative paths, tokens, following the event
stream across a restart, submit's exports and success criteria checked before sending, downloading exports, and
how an end with a quality gate and exports is told (httpx's mock transport stands in for the API)."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from yolo_api.client import local_path, parse_hyperparameter
from yolo_api.client_http import EXIT_UNREACHABLE, EXIT_USAGE, CliError, follow, resolve_token

PROGRESS = '{"code": 0, "data": {"status": "progress"}}'
DONE = '{"code": 0, "data": {"status": "success"}}'


@pytest.mark.parametrize(("pair", "parsed"), [
    ("lr0=.01", ("lr0", 0.01)), ("seed=3", ("seed", 3)), ("cos_lr=true", ("cos_lr", True)),
    ("cache=ram", ("cache", "ram")), ("cache=false", ("cache", False)), ("optimizer=SGD", ("optimizer", "SGD")),
    ("time=1.5", ("time", 1.5)),
])
def test_hyperparameters_are_typed_by_the_allow_list(pair: str, parsed: tuple[str, object]) -> None:
    assert parse_hyperparameter(pair) == parsed


@pytest.mark.parametrize(("pair", "fragment"), [
    ("seed", "expected KEY=VALUE"), ("time=1h", "must be a number of hours"), ("lr0=", "expected KEY=VALUE"),
    ("momentum=2", "between 0.0 and 1.0"), ("name=x", "trainer chooses"),
])
def test_bad_hyperparameters_are_usage_errors(pair: str, fragment: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_hyperparameter(pair)
    assert caught.value.code == EXIT_USAGE and fragment in str(caught.value)


def test_relative_paths_are_the_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_path("data/d.yaml", keep_bare_name=False) == str(tmp_path / "data" / "d.yaml")
    assert local_path("yolov8n.yaml", keep_bare_name=True) == "yolov8n.yaml"  # ultralytics' own
    (tmp_path / "mine.pt").write_bytes(b"")
    assert local_path("mine.pt", keep_bare_name=True) == str(tmp_path / "mine.pt")  # a file here wins
    assert local_path("/abs/d.yaml", keep_bare_name=False) == "/abs/d.yaml"


def test_the_token_comes_from_the_state_directory_not_the_working_directory(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("YOLO_API_TOKEN", "YOLO_API_TOKEN_FILE", "YOLO_API_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "yolo-training").mkdir(parents=True)
    (tmp_path / "xdg" / "yolo-training" / "api-token").write_text("from-default\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_token() == "from-default"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "api-token").write_text("from-state-dir")
    monkeypatch.setenv("YOLO_API_STATE_DIR", str(tmp_path / "other"))
    assert resolve_token() == "from-state-dir"
    monkeypatch.setenv("YOLO_API_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(CliError, match="cannot be read"):
        resolve_token()


def test_follow_reconnects_with_the_last_event_id_until_the_end() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("last-event-id"))
        if len(calls) == 1:
            return httpx.Response(200, text=f"event: status\nid: 5\nretry: 3000\ndata: {PROGRESS}\n\n",
                                  headers={"content-type": "text/event-stream"})
        if len(calls) == 2:
            raise httpx.ConnectError("refused")  # the API restarts
        return httpx.Response(200, text=f'event: status\nid: 9\ndata: {DONE}\n\nevent: end\nid: 9\ndata: {{}}\n\n',
                              headers={"content-type": "text/event-stream"})

    notes: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api") as http:
        seen = list(follow(http, "t1", on_retry=notes.append, sleep=lambda _: None))
    assert [body["data"]["status"] for body in seen] == ["progress", "success"]
    assert calls == [None, "5", "5"] and notes == ["API unreachable (ConnectError); retrying"]


def test_follow_gives_up_when_the_api_stays_away() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api") as http, \
            pytest.raises(CliError) as caught:
        list(follow(http, "t1", give_up_after=0, sleep=lambda _: None))
    assert caught.value.code == EXIT_UNREACHABLE and "gave up" in str(caught.value)


def test_a_cancel_the_operator_has_still_to_conclude_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cluster DELETE answers 202 (cancel requested) until the operator's verdict; yoloctl used to take
    anything but 200 as a refusal and exit with an error though the cancel had been made."""
    from typer.testing import CliRunner

    from yolo_api import client as cli

    task = "0" * 36
    body = json.dumps({"code": 0, "message": "Cancel requested", "data": {"task_id": task, "status": "progress"}})

    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("DELETE", f"/tasks/{task}")
        return httpx.Response(202, text=body, headers={"content-type": "application/json"})

    monkeypatch.setattr(cli, "client", lambda url: httpx.Client(transport=httpx.MockTransport(handler), base_url=url))
    result = CliRunner().invoke(cli.app, ["cancel", task])
    assert result.exit_code == 0, result.output
    assert "Cancel requested" in result.output


def yoloctl(monkeypatch: pytest.MonkeyPatch, handler: Callable[[httpx.Request], httpx.Response],
            *args: str) -> tuple[int, str]:
    """Run yoloctl against ``handler`` as its entry point does: a CliError is its one line and its exit code."""
    from typer.testing import CliRunner

    from yolo_api import client as cli

    monkeypatch.setattr(cli, "client", lambda url: httpx.Client(transport=httpx.MockTransport(handler), base_url=url))
    result = CliRunner().invoke(cli.app, list(args))
    if isinstance(result.exception, CliError):
        return result.exception.code, result.output + str(result.exception)
    return result.exit_code, result.output


def accepted(sent: list[dict[str, object]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/train")
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"code": 0, "data": {"task_id": "0" * 36, "status": "pending"}})
    return handler


def test_submit_sends_exports_tolerance_and_criteria(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    code, output = yoloctl(monkeypatch, accepted(sent), "submit", "yolov8n.yaml", "/d/data.yaml", "--export",
                           "onnx,TorchScript", "--export-tolerance", "0.02", "--criteria", "mAP50=0.5,recall=0.6",
                           "--criteria", "f1Score=.4")
    assert code == 0, output
    [body] = sent
    assert body["export"] == ["onnx", "torchscript"] and body["export_tolerance"] == 0.02
    assert body["success_criteria"] == {"mAP50": 0.5, "recall": 0.6, "f1Score": 0.4}
    code, _ = yoloctl(monkeypatch, accepted(sent), "submit", "yolov8n.yaml", "/d/data.yaml", "--export", "onnx",
                      "--export", "torchscript")
    assert code == 0 and sent[-1]["export"] == ["onnx", "torchscript"] and "success_criteria" not in sent[-1]


@pytest.mark.parametrize(("flags", "expected"), [
    (["--export", "tflite"], "--export tflite: Input should be 'onnx' or 'torchscript'"),
    (["--export", "onnx,onnx"], "--export: export lists a format twice"),
    (["--export", "onnx,"], "--export 'onnx,': expected formats separated by commas"),
    (["--export-tolerance", "2"], "--export-tolerance: Input should be less than or equal to 1"),
    (["--criteria", "accuracy=0.5"], "--criteria: unknown metric(s) 'accuracy': successCriteria takes precision"),
    (["--criteria", "mAP50=1.5"], "--criteria mAP50: Input should be less than or equal to 1"),
    (["--criteria", "recall=-0.1"], "--criteria recall: Input should be greater than or equal to 0"),
    (["--criteria", "mAP50"], "--criteria 'mAP50': expected METRIC=VALUE"),
    (["--criteria", "mAP50=high"], "--criteria mAP50: 'high' is not a number"),
    (["--criteria", "mAP50=0.5", "--criteria", "mAP50=0.6"], "--criteria names mAP50 twice"),
    (["--epochs", "0", "--export", "pdf"], "--epochs: Input should be greater than or equal to 1; --export pdf:"),
])
def test_bad_exports_and_criteria_are_exit_2_and_nothing_is_sent(monkeypatch: pytest.MonkeyPatch, flags: list[str],
                                                                 expected: str) -> None:
    sent: list[dict[str, object]] = []
    code, output = yoloctl(monkeypatch, accepted(sent), "submit", "yolov8n.yaml", "/d/data.yaml", *flags)
    assert code == EXIT_USAGE and expected in output, output
    assert sent == []


def test_a_422_to_a_submit_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """What only the API can check (a file it cannot find) is a command line that cannot be sent as it is."""
    refusal = {"code": 1, "message": "Invalid request", "data": {"errors": [
        {"loc": ["body", "data"], "msg": "dataset file /d/data.yaml does not exist"}]}}
    code, output = yoloctl(monkeypatch, lambda request: httpx.Response(422, json=refusal), "submit", "yolov8n.yaml",
                           "/d/data.yaml")
    assert code == EXIT_USAGE and "data: dataset file /d/data.yaml does not exist" in output


ARTIFACTS = [{"name": "best.pt", "kind": "weights", "sha256": hashlib.sha256(b"pt").hexdigest()},
             {"name": "best.onnx", "kind": "export", "sha256": hashlib.sha256(b"onnx").hexdigest()},
             {"name": "best.torchscript", "kind": "export", "sha256": hashlib.sha256(b"ts").hexdigest()}]


def stored(request: httpx.Request) -> httpx.Response:
    task = "0" * 36
    if request.url.path == f"/tasks/{task}/artifacts":
        return httpx.Response(200, json={"code": 0, "data": {"task_id": task, "artifacts": ARTIFACTS}})
    content = {"best.pt": b"pt", "best.onnx": b"onnx", "best.torchscript": b"ts"}[request.url.path.rsplit("/", 1)[1]]
    return httpx.Response(200, content=content)


def test_download_kind_export_fetches_the_exports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, output = yoloctl(monkeypatch, stored, "download", "0" * 36, "--kind", "export", "-o", str(tmp_path))
    assert code == 0 and output.count("verified") == 2, output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.onnx", "best.torchscript"]
    code, output = yoloctl(monkeypatch, stored, "download", "0" * 36, "best.onnx", "-o", str(tmp_path / "one"))
    assert code == 0 and [path.name for path in (tmp_path / "one").iterdir()] == ["best.onnx"]
    code, output = yoloctl(monkeypatch, stored, "download", "0" * 36, "--kind", "plot", "-o", str(tmp_path / "x"))
    assert code == 4 and "no artifact of kind 'plot' (it has: best.pt (weights), best.onnx (export)" in output
    code, output = yoloctl(monkeypatch, stored, "download", "0" * 36, "--kind", "pictures")
    assert code == EXIT_USAGE and "--kind pictures: expected one of weights, metrics, config, plot, export" in output


EXPORT = {"format": "onnx", "artifact": "best.onnx", "mAP50-95": 0.4987, "reference_mAP50-95": 0.5,
          "delta_mAP50-95": -0.0013}


def test_the_end_tells_the_quality_gate_and_the_exports() -> None:
    from yolo_api.client import describe

    success = {"status": "success", "quality_gate": {"passed": True, "message": "quality gate met: mAP50 0.81 >= 0.5"},
               "result": {"final_metrics": {"mAP50": 0.81}, "weights_path": "/r/best.pt", "exports": [EXPORT]}}
    assert describe({"data": success}).splitlines() == [
        "success, final metrics of best.pt: mAP50 0.81", "weights: /r/best.pt", "quality gate met: mAP50 0.81 >= 0.5",
        "export onnx: best.onnx  mAP50-95 0.4987 (.pt 0.5000, difference -0.0013)"]
    missed = "quality gate not met: mAP50 0.41 < 0.5"
    failure = {"status": "failure", "task_id": "abcdef12-0000", "reason": "QualityGateNotMet", "error": missed,
               "quality_gate": {"passed": False, "message": missed}, "exports": [EXPORT],
               "artifacts": [{"name": "best.pt", "kind": "weights"}, {"name": "results.csv", "kind": "metrics"},
                             {"name": "best.onnx", "kind": "export"}]}
    assert describe({"data": failure}).splitlines() == [  # the gate's message once: the error says it
        f"failed (QualityGateNotMet): {missed}",
        "export onnx: best.onnx  mAP50-95 0.4987 (.pt 0.5000, difference -0.0013)",
        "kept: best.pt, best.onnx (yoloctl download abcdef12)"]


def test_the_export_stage_shows_which_format_and_step() -> None:
    from yolo_api.client_delivery import export_detail

    exporting = {"stage": "exporting", "export": {"format": "onnx", "step": "validating", "done": 1, "total": 2}}
    assert export_detail(exporting) == "onnx validating (1/2 done)"
    assert export_detail({"stage": "training", "current_epoch": 1}) is None
