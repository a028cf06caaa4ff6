"""What ``yoloctl`` shows, in an 80-column terminal (a pty) and piped, against a real API over HTTP whose
backend holds trainings as a test writes them (issue 19): text in brackets kept, paths never broken by the
client, ``list`` readable at 80 columns and tab-separated when piped, mAP50 labelled by where it comes from,
the API's language taken from the locale, output folders that cannot be written refused in one line, help
without reStructuredText, ``compare`` at 80 columns and piped, a quality gate and exports told at the end, and
``python -m yolo_api.demo --help`` that only helps.
"""

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_terminal import BIN, SPAWN_ENV, one_line, run

from fakes import TOKEN, MemoryBackend
from serving import serve
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

YAML_ERROR = ("data.yaml is not valid YAML: while parsing a flow sequence in \"<unicode string>\", line 2, column 8: "
              "train: [images/train ^ expected ',' or ']', but got '<stream end>'")
WEIGHTS = "/srv/trainings/a-rather-deep/folder-for-runs/0b0c5e8e-6a4f-4b55-9d3b-2b7d7d8a1c11/weights/best.pt"
DONE = {"phase": "Succeeded", "stage": "completed", "progress": 100.0, "currentEpoch": 30, "totalEpochs": 30,
        "metrics": {"epoch": 30, "mAP50": 0.4}, "weightsPath": WEIGHTS,
        "finalMetrics": {"mAP50": 0.8123, "mAP50-95": 0.5, "precision": 0.7, "recall": 0.6, "f1_score": 0.6462}}
LOCALE = {"LANG": "en_US.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def shown(output: str) -> list[str]:
    """The lines a terminal shows, without colour codes and empty lines."""
    return [line.rstrip() for line in ESCAPES.sub("", output).splitlines() if line.strip()]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, MemoryBackend]]:
    backend = MemoryBackend()
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, sse_poll_interval=0.1,
                           local_gpus=0)
    with serve(create_app(settings, backend=backend)) as url:
        yield url, backend


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {"YOLO_API_URL": url, "YOLO_API_TOKEN": TOKEN, **LOCALE, **extra}


def piped(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(command, check=False, env={**SPAWN_ENV, **env}, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_brackets_and_long_paths_come_out_whole(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    failed = backend.put({"phase": "Failed", "stage": "failed", "trainingFailure": {
        "reason": "DatasetInvalid", "message": YAML_ERROR}})
    succeeded = backend.put(DONE)
    for runner in (run, piped):
        code, output = runner([str(BIN / "yoloctl"), "watch", failed], env=env_for(url))
        assert code == 1 and YAML_ERROR in output, output  # nothing read as markup, nothing wrapped
        code, output = runner([str(BIN / "yoloctl"), "watch", succeeded], env=env_for(url))
        assert code == 0 and f"weights: {WEIGHTS}" in output, output  # one piece to copy, even at 80 columns
        assert "final metrics of best.pt: mAP50 0.8123" in output


def test_a_cancelled_training_says_so_once(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    task = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 20})
    backend.cancel(task)
    code, output = run([str(BIN / "yoloctl"), "watch", task], env=env_for(url))
    assert code == 1 and shown(output)[-1] == "cancelled", output


def test_list_at_80_columns_and_piped(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    succeeded = backend.put(DONE)
    running = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 3, "totalEpochs": 30,
                           "progress": 10.0, "metrics": {"epoch": 3, "mAP50": 0.25}})
    code, output = run([str(BIN / "yoloctl"), "list"], env=env_for(url))
    lines = shown(output)
    assert code == 0 and lines[0].split() == ["task", "id", "state", "epoch", "mAP50", "name"], output
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:3]}
    assert rows == {succeeded: ["success", "30/30", "0.812", "best", "t"], running: ["progress", "3/30", "0.250",
                                                                                      "last", "t"]}, output
    assert "…" not in output and "best = best.pt's final value" in lines[3]
    code, output = piped([str(BIN / "yoloctl"), "list"], env=env_for(url))
    header, *rows = output.splitlines()
    assert code == 0 and header.split("\t")[0] == "task_id" and len(rows) == 2, output
    by_id = {row.split("\t")[0]: row.split("\t") for row in rows}
    assert by_id[succeeded][7:9] == ["0.4000", "0.8123"] and by_id[running][7:9] == ["0.2500", ""]


def test_the_api_answers_in_the_users_language(served: tuple[str, MemoryBackend]) -> None:
    url, _ = served
    unknown = "00000000-0000-4000-8000-000000000000"
    code, output = run([str(BIN / "yoloctl"), "status", unknown], env=env_for(url))
    assert code == 4 and one_line(output).startswith("yoloctl: Task not found"), output
    for environment in ({"LANG": "zh_CN.UTF-8"}, {"LANG": "en_US.UTF-8", "YOLO_LANG": "zh"}):
        code, output = run([str(BIN / "yoloctl"), "status", unknown], env=env_for(url, **environment))
        assert code == 4 and one_line(output).startswith("yoloctl: 任务不存在"), output
    code, output = run([str(BIN / "yoloctl"), "list"], env=env_for(url, YOLO_LANG="fr"))
    assert code == 2 and "YOLO_LANG=fr: expected en or zh" in one_line(output)


def test_download_into_a_file_is_one_line(served: tuple[str, MemoryBackend], tmp_path: Path) -> None:
    url, backend = served
    weights = tmp_path / "stored.pt"
    weights.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    task = backend.put({**DONE, "artifacts": [{"name": "best.pt", "uri": str(weights), "size": 7, "sha256": sha}]})
    backend.files[str(weights)] = weights
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, blocker / "sub"):
        code, output = run([str(BIN / "yoloctl"), "download", task, "-o", str(out)], env=env_for(url))
        assert code == 2 and "is a file, not a folder" in one_line(output), output
    code, output = run([str(BIN / "yoloctl"), "download", task, "-o", str(tmp_path / "got")], env=env_for(url))
    assert code == 0 and (tmp_path / "got" / "best.pt").read_bytes() == b"weights", output


def test_compare_at_80_columns_and_piped(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    first = backend.put(DONE, spec={"hyperparameters": {"lr0": 0.01}, "export": ["onnx"]})
    second = backend.put({**DONE, "finalMetrics": {**DONE["finalMetrics"], "mAP50": 0.9}},  # type: ignore[dict-item]
                         spec={"hyperparameters": {"lr0": 0.02}, "data": "/srv/datasets/a-rather-long-folder-name/"
                                                                       "for-our-shapes/data.yaml"})
    code, output = run([str(BIN / "yoloctl"), "compare", first, second], env=env_for(url))
    lines = shown(output)
    assert code == 0 and first[:8] in lines[0] and second[:8] in lines[0], output
    assert all(len(line) <= 80 for line in lines), output
    marked = {line.split()[1] for line in lines if line.startswith("*")}
    assert marked == {"lr0", "data", "export"}, output
    assert "a-rather-long-folder-name" in "".join(line.split()[-1] for line in lines)  # folded, never cut
    code, output = piped([str(BIN / "yoloctl"), "compare", first[:8], second], env=env_for(url))
    assert code == 0 and output.splitlines()[0] == f"field\tdiffers\t{first}\t{second}", output
    code, output = run([str(BIN / "yoloctl"), "compare", first], env=env_for(url))
    assert code == 2 and "compare takes 2 to 6 trainings, got 1" in one_line(output)


def test_the_end_tells_the_quality_gate_and_the_exports(served: tuple[str, MemoryBackend]) -> None:
    url, backend = served
    export = {"format": "onnx", "artifact": "best.onnx", "uri": "/r/best.onnx", "size": 9, "sha256": "0" * 64,
              "mAP50": 0.8, "mAP50-95": 0.4987, "referenceMAP50": 0.8, "referenceMAP50-95": 0.5,
              "deltaMAP50": 0.0, "deltaMAP50-95": -0.0013}
    gate = "quality gate met: mAP50 0.8123 >= 0.5"
    task = backend.put({**DONE, "qualityGate": {"passed": True, "message": gate}, "exports": [export]})
    code, output = run([str(BIN / "yoloctl"), "watch", task], env=env_for(url))
    lines = shown(output)
    assert code == 0 and lines[-2:] == [gate, "export onnx: best.onnx  mAP50-95 0.4987 (.pt 0.5000, difference "
                                              "-0.0013)"], output
    code, output = piped([str(BIN / "yoloctl"), "status", task], env=env_for(url))
    assert code == 0 and '"quality_gate"' in output and '"exports"' in output and '"best.onnx"' in output


def test_help_is_plain_text_and_names_yolo_lang() -> None:
    code, output = run([str(BIN / "yoloctl"), "--help"], env={"COLUMNS": "200"})
    assert code == 0 and "``" not in output and "YOLO_LANG" in output, output
    for command in ("submit", "status", "watch", "list", "compare", "logs", "cancel", "download"):
        code, output = run([str(BIN / "yoloctl"), command, "--help"], env={"COLUMNS": "200"})
        assert code == 0 and "``" not in output, (command, output)


def test_the_demo_help_only_helps(tmp_path: Path) -> None:
    code, output = run([sys.executable, "-m", "yolo_api.demo", "--help"], cwd=tmp_path, timeout=30)
    assert code == 0 and "usage: python -m yolo_api.demo" in output and "synthetic dataset" in output, output
    assert list(tmp_path.iterdir()) == []  # no .demo: nothing was drawn, started or trained
    code, output = run([sys.executable, "-m", "yolo_api.demo", "--epochs", "3"], cwd=tmp_path, timeout=30)
    assert code == 2 and "unrecognized arguments: --epochs 3" in output
