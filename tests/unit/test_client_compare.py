"""``yoloctl compare`` without a server (httpx's mock transport stands in for the API): how many trainings it
takes (exit 2 before any request), unique starts resolved, the table in a terminal and tab-separated rows when
piped, differing parameters marked, and the API's refusals as exit codes."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from yolo_api import client as cli
from yolo_api.client_compare import compare_table, rows, shown, tsv_lines
from yolo_api.client_http import CliError

FIRST, SECOND = "11111111-0000-4000-8000-000000000000", "22222222-0000-4000-8000-000000000000"
FINAL = {"mAP50": 0.8123, "mAP50-95": 0.5, "precision": 0.7, "recall": 0.6, "f1_score": 0.6462}


def entry(task_id: str, name: str, final: dict[str, float] | None, **params: Any) -> dict[str, Any]:
    return {"task_id": task_id, "name": name, "state": "success" if final else "progress", "stage": "completed",
            "final_metrics": final, "best_epoch": 2 if final else None, "history": [], "complete": True,
            "quality_gate": {"passed": True, "message": "quality gate met"} if final else None,
            "params": {"model": "yolov8n.yaml", "data": "/d/data.yaml", "epochs": 2, "imgsz": 64, "batch": 16,
                       **params}}


COMPARED = {"tasks": [entry(FIRST, "small-lr", FINAL, lr0=0.001, export=["onnx", "torchscript"],
                            successCriteria={"mAP50": 0.5}),
                      entry(SECOND, "big-lr", {**FINAL, "mAP50": 0.9}, lr0=0.01)],
            "differing": ["lr0", "export", "successCriteria"]}


def api(monkeypatch: pytest.MonkeyPatch, answer: Callable[[httpx.Request], httpx.Response]) -> list[str]:
    """Route yoloctl's requests to ``answer``; return the paths asked for (with their queries)."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.url.path}?{request.url.query.decode()}" if request.url.query else request.url.path)
        return answer(request)

    monkeypatch.setattr(cli, "client", lambda url: httpx.Client(transport=httpx.MockTransport(handler), base_url=url))
    return asked


def yoloctl(*args: str) -> tuple[int, str]:
    """Run yoloctl as its entry point does: a CliError is its one line and its exit code."""
    result = CliRunner().invoke(cli.app, list(args))
    if isinstance(result.exception, CliError):
        return result.exception.code, result.output + str(result.exception)
    return result.exit_code, result.output


def listing(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/tasks":
        items = [{"task_id": task_id} for task_id in (FIRST, SECOND)]
        return httpx.Response(200, json={"code": 0, "data": {"items": items, "total": 2}})
    return None


def compared(request: httpx.Request) -> httpx.Response:
    return listing(request) or httpx.Response(200, json={"code": 0, "message": "ok", "data": COMPARED})


@pytest.mark.parametrize("count", [0, 1, 7])
def test_fewer_than_two_or_more_than_six_is_exit_2_before_any_request(monkeypatch: pytest.MonkeyPatch,
                                                                      count: int) -> None:
    asked = api(monkeypatch, compared)
    code, output = yoloctl("compare", *(f"{n:08d}" for n in range(count)))
    assert code == 2 and asked == [], output
    if count:
        assert f"compare takes 2 to 6 trainings, got {count}" in output


def test_piped_it_is_tab_separated_with_a_differs_column(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = api(monkeypatch, compared)
    code, output = yoloctl("compare", "1111", SECOND)  # a unique start, and a whole id
    assert code == 0, output
    assert asked[-1] == f"/tasks/compare?ids={FIRST}%2C{SECOND}"
    header, *lines = output.splitlines()
    assert header.split("\t") == ["field", "differs", FIRST, SECOND]
    table = {line.split("\t")[0]: line.split("\t")[1:] for line in lines}
    assert table["name"] == ["", "small-lr", "big-lr"] and table["state"] == ["", "success", "success"]
    assert table["mAP50"] == ["", "0.8123", "0.9000"] and table["quality_gate"] == ["", "met", "met"]
    assert table["epochs"] == ["", "2", "2"] and table["lr0"] == ["yes", "0.001", "0.01"]
    assert table["export"] == ["yes", "onnx,torchscript", ""]
    assert table["successCriteria"] == ["yes", "mAP50=0.5", ""]


def test_in_a_terminal_differing_rows_are_marked() -> None:
    console = Console(width=80, record=True, force_terminal=True, color_system=None)
    console.print(compare_table(COMPARED))
    lines = console.export_text().splitlines()
    assert FIRST[:8] in lines[0] and SECOND[:8] in lines[0] and "small-lr" in lines[1]
    marked = {line.split()[1] for line in lines if line.startswith("*")}
    assert marked == {"lr0", "export", "successCriteria"}
    assert any(line.split()[:3] == ["mAP50", "0.8123", "0.9000"] for line in lines)
    assert not any(line.split()[:1] == ["name"] for line in lines)  # the header names each training


def test_a_training_without_final_metrics_has_empty_cells() -> None:
    data = {"tasks": [entry(FIRST, "a", None), entry(SECOND, "b", FINAL)], "differing": []}
    by_field = {field: values for field, _, values in rows(data)}
    assert by_field["mAP50"] == ["", "0.8123"] and by_field["quality_gate"] == ["", "met"]
    assert by_field["best_epoch"] == ["", "2"] and len(tsv_lines(data)) == 1 + len(by_field)


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), (True, "true"), (0.0001, "0.0001"), (16, "16"), (["onnx"], "onnx"), ({"mAP50": 0.5, "recall": 0.6},
                                                                                     "mAP50=0.5,recall=0.6"),
])
def test_values_are_one_cell(value: object, cell: str) -> None:
    assert shown(value) == cell


def test_the_same_training_twice_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = api(monkeypatch, compared)
    code, output = yoloctl("compare", "1111", FIRST)
    assert code == 2 and "are the same training" in output
    assert not any(path.startswith("/tasks/compare") for path in asked)


@pytest.mark.parametrize(("status", "code"), [(422, 2), (404, 4)])
def test_the_apis_refusals_are_exit_codes(monkeypatch: pytest.MonkeyPatch, status: int, code: int) -> None:
    body = {"code": 1, "message": "Invalid request" if status == 422 else "Task not found",
            "data": {"errors": [{"loc": ["query", "ids"], "msg": "2 to 6 distinct task ids"}]} if status == 422
            else {"task_id": SECOND}}
    api(monkeypatch, lambda request: listing(request) or httpx.Response(status, text=json.dumps(body)))
    exit_code, output = yoloctl("compare", FIRST, SECOND)
    assert exit_code == code and str(body["message"]) in output, output
