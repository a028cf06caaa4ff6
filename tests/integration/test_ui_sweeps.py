"""The dashboard's sweep view (issue 21), in headless Chromium against the real API and local backend.

The sweep and its trials are written into the local store as the local backend writes them (a row per sweep,
a row per trial with its task), each trial's status as its trainer left it: four succeeded trials with their
per-epoch history and final metrics, one failed before any objective. No trainer runs: the view is what is
tested, and it costs a few seconds.

* ``Sweeps`` in the header lists the sweep: name, phase, trials done of the budget, running, best objective.
* Its view (deep link ``/ui#sweep=<id>``): progress and counts by state, the trials sorted by objective (best
  first, the trial without one last), a scatter of the objective against each searched parameter with one
  point per trial that has an objective (``lr0`` on a log axis, ``optimizer``'s names as categories), the best
  trial's mAP50-95 and loss curves, and the best trial's link opening that training's detail.

Screenshot: ``test-output/ui-sweep.png``.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from test_ui import open_page, screenshot

from fakes import TOKEN
from serving import serve
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings
from yolo_crd.status import TrainingStatus
from yolo_crd.sweep import YoloSweepSpec, trial_spec
from yolo_crd.sweep_status import record_of, summary
from yolo_io import local_store

pytestmark = pytest.mark.slow
#: (number, lr0, optimizer, final mAP50-95 or None for a trial that failed before its first epoch)
TRIALS = [(0, 0.002, "SGD", 0.31), (1, 0.03, "Adam", 0.62), (2, 0.008, "SGD", 0.47), (3, 0.09, "Adam", None),
          (4, 0.001, "Adam", 0.12)]


def spec_of(data: Path) -> dict[str, Any]:
    return {"template": {"model": "yolov8n.yaml", "data": str(data), "epochs": 2, "imgsz": 64},
            "objective": {"metric": "mAP50-95", "goal": "maximize"}, "algorithm": "random", "seed": 1,
            "maxTrials": len(TRIALS), "parallelism": 2,
            "parameters": {"lr0": {"min": 0.001, "max": 0.1, "scale": "log"},
                           "optimizer": {"values": ["SGD", "Adam"]}}}


def trial_status(value: float | None) -> dict[str, Any]:
    """A trial's status as its trainer left it: two epochs and final metrics, or a failure before epoch 1."""
    if value is None:
        return {"phase": "Failed", "reason": "TrainingError", "message": "CUDA out of memory",
                "completionTime": "2026-01-01T00:05:00Z"}
    history = [{"epoch": epoch, "mAP50": value * epoch / 1.5, "mAP50-95": value * epoch / 2,
                "train_box_loss": 2.0 / epoch, "train_cls_loss": 3.0 / epoch, "train_dfl_loss": 1.5 / epoch}
               for epoch in (1, 2)]
    return {"phase": "Succeeded", "stage": "completed", "currentEpoch": 2, "totalEpochs": 2, "progress": 100.0,
            "metrics": history[-1], "history": history, "weightsPath": "/runs/x/weights/best.pt",
            "finalMetrics": {"mAP50": value * 1.3, "mAP50-95": value, "precision": 0.6, "recall": 0.5,
                             "f1_score": 0.55},
            "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:05:00Z"}


def seed(state_dir: Path, data: Path) -> tuple[str, dict[int, str]]:
    """A finished sweep in the local store, as the local backend leaves one; its id and its trials' task ids."""
    state_dir.mkdir(parents=True, exist_ok=True)
    raw = spec_of(data)
    spec = YoloSweepSpec.model_validate(raw)
    sweep_id, tasks, records = str(uuid.uuid4()), {}, []
    conn = local_store.connect(state_dir / "state.db")
    try:
        assert local_store.insert_sweep(conn, sweep_id, "lr-search", spec.wire())
        for number, lr0, optimizer, value in TRIALS:
            parameters = {"lr0": lr0, "optimizer": optimizer}
            tasks[number] = str(uuid.uuid4())
            status = trial_status(value)
            local_store.insert_trial(conn, sweep_id, number, tasks[number], f"lr-search-{number:03d}", parameters,
                                     trial_spec(spec.template, parameters).wire(), status)
            records.append(record_of(spec, number, f"lr-search-{number:03d}", parameters,
                                     TrainingStatus.model_validate(status), task_id=tasks[number]))
        final = summary(spec, records).wire()
        local_store.write_sweep_status(conn, sweep_id, {**final, "startTime": "2026-01-01T00:00:00Z",
                                                        "completionTime": "2026-01-01T00:10:00Z"})
        conn.commit()
    finally:
        conn.close()
    return sweep_id, tasks


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[int, str]]]:
    tmp = tmp_path_factory.mktemp("ui-sweeps")
    data = tmp / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n", encoding="utf-8")
    sweep_id, tasks = seed(tmp / "state", data)
    settings = ApiSettings(backend="local", state_dir=tmp / "state", auth_token=TOKEN, poll_interval=0.2,
                           sse_poll_interval=0.2, allowed_roots=[tmp], local_gpus=0)
    with serve(create_app(settings)) as url:
        yield url, sweep_id, tasks


def test_the_sweep_list_and_view_show_trials_by_objective_scatters_and_the_best_curves(
        swept: tuple[str, str, dict[int, str]], browser: Browser) -> None:
    url, sweep_id, tasks = swept
    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{url}/ui#token={TOKEN}")
    page.get_by_test_id("sweeps-tab").click()
    expect(page.get_by_test_id("sweeps-tab")).to_have_attribute("aria-pressed", "true")
    row = page.get_by_test_id("sweep-row")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("lr-search")
    expect(cells.nth(1)).to_have_text("Succeeded")
    expect(cells.nth(2)).to_have_text(f"{len(TRIALS)}/{len(TRIALS)}")
    expect(cells.nth(3)).to_have_text("0")
    expect(cells.nth(4)).to_have_text("0.6200 mAP50-95")

    row.get_by_role("button", name="lr-search").click()
    view = page.get_by_test_id("sweep")
    expect(view).to_have_attribute("data-state", "over")
    expect(page).to_have_url(f"{url}/ui#sweep={sweep_id}")
    expect(page.get_by_test_id("sweep-state")).to_have_text("Succeeded")
    expect(page.get_by_test_id("sweep-text")).to_contain_text("5 of 5 trials done — 4 succeeded, 1 failed")
    expect(page.get_by_test_id("sweep-cancel")).to_be_hidden()  # a finished sweep has nothing to cancel

    trials = page.get_by_test_id("trial-row")
    expect(trials).to_have_count(len(TRIALS))
    shown = page.get_by_test_id("trial-objective").all_inner_texts()
    assert shown == ["0.6200", "0.4700", "0.3100", "0.1200", ""], shown  # best first, none last
    assert trials.evaluate_all("rows => rows.map(r => r.dataset.trial)") == ["1", "2", "0", "4", "3"]
    expect(trials.first).to_have_class("best")

    scored = sum(value is not None for *_, value in TRIALS)
    scatters = page.get_by_test_id("sweep-scatter")
    expect(scatters).to_have_count(2)  # one per searched parameter
    for param in ("lr0", "optimizer"):
        points = page.evaluate(f"() => Charts.plots['sweep-scatter-{param}'].data[1].filter(v => v !== null).length")
        assert points == scored, (param, points)
        expect(page.locator(f"[data-testid=sweep-scatter][data-param={param}] canvas")).to_have_count(1)
    assert page.evaluate("() => Charts.plots['sweep-scatter-lr0'].scales.x.distr") == 3  # log axis
    assert page.evaluate("() => Charts.plots['sweep-scatter-lr0'].data[0]") == sorted(
        lr0 for _, lr0, _, value in TRIALS if value is not None)

    expect(page.get_by_test_id("sweep-curves")).to_have_attribute("data-epochs", "2")
    curve = page.evaluate("() => Charts.plots['sweep-map'].data")
    assert curve == [[1, 2], [0.62 / 2, 0.62]], curve
    assert page.evaluate("() => Charts.plots['sweep-loss'].data[1]") == [2.0, 1.0]
    screenshot(page, "ui-sweep.png")

    page.get_by_test_id("sweep-best-link").click()  # the best trial opens its training's detail
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text("lr-search-001")
    expect(page.get_by_test_id("detail-info")).to_contain_text(tasks[1])
    expect(page).to_have_url(f"{url}/ui#task={tasks[1]}&sweep={sweep_id}")
    expect(view).to_be_visible()  # the sweep stays open above it
    assert not errors, errors


def test_a_deep_link_opens_the_sweep_and_a_trial_link_its_training(swept: tuple[str, str, dict[int, str]],
                                                                   browser: Browser) -> None:
    url, sweep_id, tasks = swept
    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{url}/ui#token={TOKEN}&sweep={sweep_id}")
    expect(page.get_by_test_id("sweep")).to_have_attribute("data-state", "over")
    expect(page).to_have_url(f"{url}/ui#sweep={sweep_id}")
    failed = page.locator("[data-testid=trial-row][data-trial='3']")
    expect(failed).to_contain_text("TrainingError")  # why it failed
    page.locator("[data-testid=trial-row][data-trial='2'] a").click()
    expect(page.locator("#detail-title")).to_have_text("lr-search-002")
    page.locator("#sweep-close").click()
    expect(page.get_by_test_id("sweep")).to_be_hidden()
    expect(page).to_have_url(f"{url}/ui#task={tasks[2]}")
    assert json.dumps(errors) == "[]", errors
