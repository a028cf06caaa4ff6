"""yoloctl's parts without a server: typed hyperparameters, caller-relative paths, tokens, and following
the event stream across a restart (httpx's mock transport stands in for the API)."""

import json
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
