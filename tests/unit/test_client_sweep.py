"""``yoloctl sweep`` against the real routes over an in-memory backend (Starlette's TestClient is the httpx client):
a spec file checked before sending (exit 2, one line naming the field), submit, list, watch (a live table in a
terminal, lines and tab-separated trials when piped) and cancel, with yoloctl's exit codes."""

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api import client as cli
from yolo_api import client_sweep
from yolo_api.app import create_app
from yolo_api.client_http import CliError
from yolo_api.settings import ApiSettings

SPEC = """\
template:
  model: yolov8n.yaml
  data: datasets/shapes/data.yaml
  epochs: 3
  gpus: 0
algorithm: grid
objective: {metric: mAP50-95}
maxTrials: 4
parallelism: 2
parameters:
  lr0: {values: [0.01, 0.02]}
  imgsz: {values: [64, 96]}
"""
WIRE = {"template": {"model": "yolov8n.yaml", "data": "/d.yaml", "gpus": 0}, "algorithm": "grid", "maxTrials": 2,
        "objective": {"metric": "mAP50-95"}, "parameters": {"lr0": {"values": [0.01, 0.02]}}}


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> MemoryBackend:
    backend = MemoryBackend()
    app = create_app(ApiSettings(backend="local", auth_token=TOKEN), backend=backend)
    monkeypatch.setattr(client_sweep, "client", lambda url: TestClient(app, headers=AUTH))
    return backend


def yoloctl(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    """Run yoloctl as its entry point does: a CliError is its one line and its exit code."""
    result = CliRunner().invoke(cli.app, ["sweep", *args])
    if isinstance(result.exception, CliError):
        return result.exception.code, result.output + str(result.exception)
    return result.exit_code, result.stdout if stdout_only else result.output


def trial(number: int, state: str, objective: float | None) -> dict[str, Any]:
    return {"trial": number, "name": f"s-{number:03d}", "task_id": f"task-{number}", "state": state,
            "objective": objective, "epoch": 3, "parameters": {"lr0": 0.01 * (number + 1)}, "reason": None}


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(SPEC)
    return tmp_path / "sweep.yaml"


def test_submit_prints_the_id_and_sends_the_callers_paths(backend: MemoryBackend, spec_file: Path) -> None:
    code, output = yoloctl("submit", "-f", str(spec_file), "--name", "lr-grid", stdout_only=True)
    sweep_id = next(iter(backend.sweep_records))
    assert code == 0 and output == f"{sweep_id}\n"  # alone on stdout: id=$(yoloctl sweep submit ...)
    spec, name, _ = backend.submitted_sweeps[0]
    assert name == "lr-grid" and spec.trial_budget() == 4
    assert spec.template.data == str(spec_file.parent / "datasets" / "shapes" / "data.yaml")
    assert spec.template.model == "yolov8n.yaml"  # a bare name stays ultralytics' own
    code, output = yoloctl("submit", "-f", str(spec_file), "--name", "lr-grid")
    assert code == 4 and "lr-grid" in output  # the name is taken: the API's 409


def test_a_manifest_names_the_sweep(backend: MemoryBackend, tmp_path: Path) -> None:
    manifest = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloSweep",
                "metadata": {"name": "from-kubectl", "namespace": "team-a"}, "spec": WIRE}
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    assert yoloctl("submit", "-f", str(tmp_path / "sweep.json"))[0] == 0
    assert backend.submitted_sweeps[0][1:] == ("from-kubectl", "team-a")


@pytest.mark.parametrize(("change", "fragment"), [
    ("maxTrials: 4", "maxTrials: Input should be less than or equal to 200"),
    ("parallelism: 2", "parallelism: Input should be greater than or equal to 1"),
    ("  lr0: {values: [0.01, 0.02]}", "parameters.lr: 'lr' cannot be searched"),
    ("  imgsz: {values: [64, 96]}", "parameters.imgsz: grid needs values"),
])
def test_a_bad_spec_is_exit_2_naming_the_field_with_nothing_sent(backend: MemoryBackend, spec_file: Path,
                                                                 change: str, fragment: str) -> None:
    replacement = {"maxTrials: 4": "maxTrials: 500", "parallelism: 2": "parallelism: 0",
                   "  lr0: {values: [0.01, 0.02]}": "  lr: {values: [0.01]}",
                   "  imgsz: {values: [64, 96]}": "  imgsz: {min: 64, max: 96}"}[change]
    spec_file.write_text(SPEC.replace(change, replacement))
    code, output = yoloctl("submit", "-f", str(spec_file))
    assert code == 2 and fragment in output and len(output.strip().splitlines()) == 1
    assert backend.submitted_sweeps == []


@pytest.mark.parametrize(("text", "fragment"), [(None, "cannot be read"), ("a: [", "not YAML or JSON"),
                                                ("- 1", "expected a mapping")])
def test_an_unusable_file_is_exit_2(backend: MemoryBackend, tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "sweep.yaml"
    if text is not None:
        path.write_text(text)
    code, output = yoloctl("submit", "-f", str(path))
    assert code == 2 and fragment in output


def test_list_is_tab_separated_when_piped(backend: MemoryBackend) -> None:
    done = backend.put_sweep(WIRE, {"phase": "Succeeded", "done": "2/2",
                                    "best": {"trial": 1, "name": "s-001", "objective": 0.7}}, name="first")
    backend.put_sweep(WIRE, {"phase": "Running", "done": "0/2"}, name="second")
    code, output = yoloctl("list")
    lines = output.splitlines()
    assert code == 0 and lines[0].split("\t")[:4] == ["sweep_id", "name", "namespace", "state"]
    assert [line.split("\t")[1] for line in lines[1:]] == ["second", "first"]
    code, output = yoloctl("list", "--state", "succeeded")
    assert output.splitlines()[1].split("\t")[:7] == [done, "first", "", "succeeded", "2/2", "", "0.7"]
    assert yoloctl("list", "--state", "over")[0] == 2


def test_watch_follows_until_the_end_and_exits_by_the_outcome(backend: MemoryBackend) -> None:
    sweep = backend.put_sweep(WIRE, {"phase": "Running", "done": "0/2", "counts": {"running": 2}}, name="lr",
                              trials=[trial(0, "running", 0.2), trial(1, "running", 0.1)])

    def finish() -> None:
        backend.put_sweep(WIRE, {"phase": "Succeeded", "done": "2/2", "best": {
            "trial": 1, "name": "s-001", "taskId": "task-1", "objective": 0.7}}, name="lr", sweep_id=sweep,
            trials=[trial(0, "succeeded", 0.3), trial(1, "succeeded", 0.7)])

    timer = threading.Timer(0.3, finish)
    timer.start()
    code, output = yoloctl("watch", "lr", "--interval", "0.05")  # by name
    timer.join()
    lines = output.splitlines()
    assert code == 0 and lines[0] == "sweep lr: running, 0/2 trials done, 2 running"
    assert "sweep lr: succeeded, 2/2 trials done, 0 running; best mAP50-95 0.7000 (s-001, task task-1)" in lines
    assert lines[-3] == "trial\tname\tstate\tobjective\tepoch\tlr0\ttask_id\treason"
    assert [line.split("\t")[:4] for line in lines[-2:]] == [["1", "s-001", "succeeded", "0.7"],
                                                             ["0", "s-000", "succeeded", "0.3"]]
    failed = backend.put_sweep(WIRE, {"phase": "Failed", "reason": "NoTrialSucceeded", "message": "no trial succeeded"})
    assert yoloctl("watch", failed[:8])[0] == 1  # by a start of its id
    assert yoloctl("watch", "nope")[0] == 4


def test_watch_in_a_terminal_is_a_live_table_sorted_by_objective(backend: MemoryBackend) -> None:
    sweep = backend.put_sweep(WIRE, {"phase": "Succeeded", "done": "3/3"}, name="lr",
                              trials=[trial(0, "succeeded", 0.3), trial(1, "failed", None), trial(2, "succeeded", 0.9)])
    screen = io.StringIO()
    with client_sweep.client("") as http:
        data = client_sweep.follow_sweep(http, sweep, interval=0.01, give_up_after=1,
                                         out=Console(file=screen, force_terminal=True, width=100))
    assert data["state"] == "succeeded"
    rows = [line.split() for line in screen.getvalue().splitlines() if line.strip().startswith(("0 ", "1 ", "2 "))]
    assert [row[:4] for row in rows[-3:]] == [["2", "s-002", "succeeded", "0.9000"], ["0", "s-000", "succeeded", "0.3000"],
                                         ["1", "s-001", "failed", "3"]]
    assert "mAP50-95" in screen.getvalue() and "lr0" in screen.getvalue()


def test_cancel(backend: MemoryBackend) -> None:
    sweep = backend.put_sweep(WIRE, {"phase": "Running"}, name="lr")
    code, output = yoloctl("cancel", sweep)
    assert code == 0 and "调参任务已取消" in output and backend.sweep_records[sweep].cancelled  # no Accept-Language: zh
    assert yoloctl("cancel", "0" * 36)[0] == 4
