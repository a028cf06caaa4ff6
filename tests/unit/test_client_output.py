"""What ``yoloctl`` prints, without a server: one ``--hp`` grammar shared with the trainer, the language it
asks the API for, logs as a terminal shows them, the ``list`` layouts, how an end is described, and output
folders it cannot write (issue 19)."""

import re
from pathlib import Path

import httpx
import pytest
import typer
from rich.console import Console

from yolo_api.client import describe, parse_hyperparameter
from yolo_api.client_download import check_folder, download_artifacts
from yolo_api.client_http import EXIT_USAGE, CliError, preferred_language, printable_log
from yolo_api.client_table import task_table, tsv_rows
from yolo_crd.hyperparameters import parse_hp
from yolo_trainer.cli import hyperparameters

PAIRS = ["lr0=1e-3", "cos_lr=yes", "cache=ram", "cache=off", "seed=3", "time=0.5", "optimizer=AdamW",
         "momentum=.9", "fraction=1"]


def test_the_trainer_and_yoloctl_type_hyperparameters_alike() -> None:
    expected = {"lr0": 0.001, "cos_lr": True, "cache": False, "seed": 3, "time": 0.5, "optimizer": "AdamW",
                "momentum": 0.9, "fraction": 1.0}
    assert hyperparameters(PAIRS) == expected  # YAML read 1e-3 as the string '1e-3'
    assert dict(parse_hyperparameter(pair) for pair in PAIRS) == expected
    assert type(expected["fraction"]) is float and type(hyperparameters(["fraction=1"])["fraction"]) is float


@pytest.mark.parametrize(("text", "message"), [
    ("seed", "'seed': expected KEY=VALUE"), ("seed=1.5", "seed: must be an integer, got '1.5'"),
    ("time=1h", "time: must be a number of hours, got '1h'"), ("lr0=nan", "lr0: must be a number, got 'nan'"),
    ("name=x", "the trainer chooses where outputs are written"), ("lr=1", "unknown hyperparameter 'lr'"),
])
def test_both_command_lines_refuse_the_same_hyperparameters(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as parsed:
        parse_hp(text)
    with pytest.raises(typer.BadParameter) as trainer:
        hyperparameters([text])
    assert message in str(trainer.value)
    with pytest.raises(CliError) as client:
        parse_hyperparameter(text)
    assert client.value.code == EXIT_USAGE and str(client.value) == f"--hp {parsed.value}"


@pytest.mark.parametrize(("environ", "language"), [
    ({}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "en_GB.UTF-8"}, "en"), ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "zh_TW"}, "zh"), ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_US.UTF-8"}, "en"),
    ({"LANG": "en_US", "LC_ALL": "zh_CN.UTF-8", "LC_MESSAGES": "en_US"}, "zh"), ({"LC_ALL": "", "LANG": "zh"}, "zh"),
    ({"LANG": "zh_CN.UTF-8", "YOLO_LANG": "en"}, "en"), ({"LANG": "C", "YOLO_LANG": "ZH"}, "zh"),
])
def test_the_language_comes_from_the_locale_unless_yolo_lang_says(environ: dict[str, str], language: str) -> None:
    assert preferred_language(environ) == language


def test_an_unknown_yolo_lang_is_a_usage_error() -> None:
    with pytest.raises(CliError, match="YOLO_LANG=fr: expected en or zh") as caught:
        preferred_language({"YOLO_LANG": "fr"})
    assert caught.value.code == EXIT_USAGE


def test_logs_read_as_a_terminal_showed_them() -> None:
    tqdm = ("\x1b[34m\x1b[1mtrain: \x1b[0mScanning labels\n"
            "      1/30  0G  1.2  10%|█         | 1/10 [00:01<00:09]\r"
            "      1/30  0G  1.1 100%|██████████| 10/10 [00:02<00:00]\r\n"
            "\x1b]8;;http://x\x07link\x1b]8;;\x07 done\x1b[K\n")
    assert printable_log(tqdm) == ("train: Scanning labels\n      1/30  0G  1.1 100%|██████████| 10/10 [00:02<00:00]"
                                   "\nlink done\n")
    assert printable_log("redrawn\r\n") == "redrawn\n"
    assert printable_log("a\rb\r\n") == "b\n"  # the last state, not an empty line
    cut = "训练".encode()[1:] + b" epoch 3\n"  # the API cut inside 训
    served = cut.decode("utf-8", errors="replace")  # what the API answers for it
    assert printable_log(served) == "练 epoch 3\n"


ITEMS = [
    {"task_id": "0b0c5e8e-6a4f-4b55-9d3b-2b7d7d8a1c11", "name": "demo", "status": "success", "state": "success",
     "stage": "completed", "current_epoch": 30, "total_epochs": 30, "progress": 100.0, "mAP50": 0.71,
     "final_metrics": {"mAP50": 0.8123}, "created_at": "2026-01-01T00:00:01Z"},
    {"task_id": "1b0c5e8e-6a4f-4b55-9d3b-2b7d7d8a1c11", "name": "[x]-a-much-longer-name-than-fits", "status":
     "progress", "state": "progress", "stage": "training", "current_epoch": 3, "total_epochs": 100, "progress": 3.0,
     "mAP50": 0.21, "final_metrics": None, "created_at": "2026-01-01T00:00:01Z"},
    {"task_id": "2b0c5e8e-6a4f-4b55-9d3b-2b7d7d8a1c11", "name": "x", "status": "failure", "state": "cancelled",
     "stage": "initializing", "current_epoch": 0, "total_epochs": 100, "progress": 0.0, "mAP50": None,
     "final_metrics": None, "created_at": "2026-01-01T00:00:01Z"},
]


def rendered(width: int, wide: bool) -> list[str]:
    out = Console(width=width, record=True, color_system=None, force_terminal=True)
    out.print(task_table(ITEMS, wide=wide))
    return [line.rstrip() for line in out.export_text().splitlines()]


def test_list_fits_80_columns_and_says_which_map50() -> None:
    header, *rows = rendered(80, wide=False)
    assert header.split() == ["task", "id", "state", "epoch", "mAP50", "name"]
    assert all(len(line) <= 80 for line in rows) and len(rows) == 3  # one line per training
    assert rows[0].split() == [ITEMS[0]["task_id"], "success", "30/30", "0.812", "best", "demo"]
    assert rows[1].split()[:5] == [ITEMS[1]["task_id"], "progress", "3/100", "0.210", "last"]
    assert rows[1].endswith("…") and "[x]" in rows[1]  # only the name is shortened, its brackets kept
    header, *rows = rendered(160, wide=True)
    assert header.split() == ["task", "id", "state", "epoch", "mAP50", "stage", "progress", "created", "name"]
    assert ITEMS[1]["name"] in rows[1] and "…" not in "".join(rows)


def test_list_piped_is_tab_separated_with_both_map50s() -> None:
    header, *rows = tsv_rows(ITEMS)
    assert header.split("\t") == ["task_id", "name", "state", "stage", "epoch", "total_epochs", "progress",
                                  "mAP50_last_epoch", "mAP50_best_pt", "created_at"]
    assert rows[0].split("\t")[7:9] == ["0.7100", "0.8123"] and rows[1].split("\t")[7:9] == ["0.2100", ""]
    assert all(len(row.split("\t")) == 10 for row in rows)


@pytest.mark.parametrize(("data", "said"), [
    ({"status": "failure", "reason": "Cancelled", "error": "cancelled"}, "cancelled"),
    ({"status": "failure", "reason": "DatasetInvalid", "error": "[images/train ^ expected ',' or ']'"},
     "failed (DatasetInvalid): [images/train ^ expected ',' or ']'"),
    ({"status": "failure", "reason": "OOMKilled", "error": "OOMKilled"}, "failed (OOMKilled)"),
    ({"status": "success", "result": {"final_metrics": {"mAP50": 0.5}, "weights_path": "/w/best.pt"}},
     "success, final metrics of best.pt: mAP50 0.5\nweights: /w/best.pt"),
])
def test_how_a_training_ended_is_said_once(data: dict[str, object], said: str) -> None:
    assert describe({"data": data}) == said


def test_an_output_folder_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "best.pt"
    blocker.write_bytes(b"x")
    for folder in (blocker, blocker / "sub"):
        with pytest.raises(CliError, match="is a file, not a folder") as caught:
            check_folder(folder)
        assert caught.value.code == EXIT_USAGE
    check_folder(tmp_path / "new" / "folder")  # to be created: fine

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/artifacts"):
            return httpx.Response(200, json={"data": {"artifacts": [{"name": "best.pt", "sha256": "0" * 64}]}})
        return httpx.Response(200, content=b"weights")

    with httpx.Client(transport=httpx.MockTransport(api), base_url="http://api") as http, \
            pytest.raises(CliError, match=f"cannot write into {blocker / 'sub'}") as caught:
        download_artifacts(http, "t1", None, blocker / "sub")  # no traceback even past the early check
    assert caught.value.code == EXIT_USAGE
