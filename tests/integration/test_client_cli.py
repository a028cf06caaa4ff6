"""``yoloctl`` against a real HTTP server (uvicorn on loopback) over an in-memory backend."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes import TOKEN, MemoryBackend
from serving import serve
from yolo_api.app import create_app
from yolo_api.client import app as yoloctl
from yolo_api.settings import ApiSettings

FINAL = {"mAP50": 0.9, "mAP50-95": 0.6, "precision": 0.8, "recall": 0.9, "f1_score": 0.8471}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, MemoryBackend]]:
    monkeypatch.setenv("YOLO_API_TOKEN", TOKEN)
    backend = MemoryBackend()
    with serve(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend)) as url:
        yield url, backend


def test_submit_status_list_watch_cancel(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    runner = CliRunner()
    submitted = runner.invoke(yoloctl, ["submit", "yolov8n.yaml", "data.yaml", "--url", url, "--epochs", "3",
                                        "--gpus", "0", "--hp", "lr0=0.02", "--hp", "optimizer=SGD"])
    assert submitted.exit_code == 0, submitted.output
    [spec] = backend.submitted
    assert spec.hyperparameters == {"lr0": 0.02, "optimizer": "SGD"} and spec.epochs == 3
    task = next(iter(backend.records))
    assert "任务等待中" in runner.invoke(yoloctl, ["status", task, "--url", url]).output
    listed = runner.invoke(yoloctl, ["list", "--url", url])
    assert listed.exit_code == 0 and task[:8] in listed.output
    done = backend.put({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, "weightsPath": "/w.pt"})
    watched = runner.invoke(yoloctl, ["watch", done, "--url", url, "--interval", "0.1"])
    assert watched.exit_code == 0 and "0.8471" in watched.output
    cancelled = runner.invoke(yoloctl, ["cancel", task, "--url", url])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    failed = runner.invoke(yoloctl, ["watch", task, "--url", url, "--interval", "0.1"])
    assert failed.exit_code == 1
    bad = runner.invoke(yoloctl, ["submit", "yolov8n.yaml", "data.yaml", "--url", url, "--hp", "project=/etc"])
    assert bad.exit_code == 1 and "trainer chooses" in bad.output


def test_a_missing_token_is_reported_not_a_traceback(served: tuple[str, MemoryBackend],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url, _ = served
    monkeypatch.delenv("YOLO_API_TOKEN")
    monkeypatch.chdir(tmp_path)  # no .yolo-state/api-token here either
    for command in (["list"], ["status", "x"], ["cancel", "x"], ["submit", "m.yaml", "d.yaml", "--gpus", "0"]):
        result = CliRunner().invoke(yoloctl, [*command, "--url", url])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (command, result.exception)
        assert "Not authenticated" in result.output or "未认证" in result.output, command
