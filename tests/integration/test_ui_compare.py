"""Runs side by side in the dashboard (issue 20), in headless Chromium against the real API (``GET
/tasks/compare``), local backend and two real short ultralytics trainings that differ in ``lr0`` and epochs:

* a deep link ``/ui#compare=<a>,<b>`` opens the comparison: mAP50-95 and a loss overlaid per epoch, one series
  per training with its name and task id in the legend, and a table of final metrics and parameters where
  what differs (``lr0``, ``epochs``) is highlighted and what is equal is not;
* the table's checkboxes pick the trainings and keep the link in step; the view follows the selection;
* the API's refusals (one training, more than six) are shown as it says them, and more than six picks are
  refused in the page too.

Screenshot: ``test-output/ui-compare.png``.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_ui import local_settings, open_page, screenshot
from test_ui_gallery import finished

from fakes import AUTH, TOKEN
from serving import serve
from yolo_api.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset3: Path) -> Iterator[tuple[str, list[str]]]:
    """The API over the local backend, and two finished trainings: 2 epochs at lr0 0.01, 3 at lr0 0.05."""
    tmp = tmp_path_factory.mktemp("ui-compare")
    settings = local_settings(tmp, dataset3).model_copy(update={"max_parallel": 2})
    with pytest.MonkeyPatch.context() as patch, serve(create_app(settings)) as url:
        patch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
        tasks = []
        for name, epochs, lr0 in (("cmp-lr0-001", 2, 0.01), ("cmp-lr0-005", 3, 0.05)):
            hyperparameters = {"workers": 0, "seed": 0, "optimizer": "SGD", "lr0": lr0}  # "auto" would ignore lr0
            body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": epochs, "imgsz": 64, "batch": 16,
                    "name": name, "hyperparameters": hyperparameters}
            tasks.append(str(httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"]))
        for task in tasks:
            finished(url, task)
        yield url, tasks


def series(page: Page, chart: str) -> list[list[float | None]]:
    """The y values of each series the chart draws (uPlot's data, the epochs left out)."""
    values: list[list[float | None]] = page.evaluate(f"() => Charts.plots[{chart!r}].data.slice(1)")
    return values


def test_a_deep_link_compares_two_trainings_curves_and_parameters(trained: tuple[str, list[str]],
                                                                  browser: Browser) -> None:
    url, (a, b) = trained
    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{url}/ui#token={TOKEN}&compare={a},{b}")
    view = page.get_by_test_id("compare")
    expect(view).to_have_attribute("data-state", "shown", timeout=20_000)
    expect(page).to_have_url(f"{url}/ui#compare={a},{b}")  # the token taken out, the link as it was
    for chart in ("compare-map", "compare-loss"):
        expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
        legend = page.get_by_test_id(chart).locator(".u-legend .u-series")
        expect(legend).to_have_count(3)  # the epoch, then one entry per training
        expect(legend.nth(1)).to_contain_text(f"cmp-lr0-001 ({a})")
        expect(legend.nth(2)).to_contain_text(f"cmp-lr0-005 ({b})")
        first, second = series(page, chart)  # on one epoch axis: the shorter run has no third value
        assert [v is not None for v in first] == [True, True, False] and all(v is not None for v in second)
    markers = page.get_by_test_id("compare-map").locator(".u-legend .u-series .u-marker")
    colours = markers.evaluate_all("ms => ms.slice(1).map(m => getComputedStyle(m).borderColor)")
    assert len(set(colours)) == 2, colours  # one colour per training
    expect(page.get_by_test_id("compare-loss-title")).to_have_text("validation box loss (val_box_loss) per epoch")
    page.get_by_test_id("compare-loss-key").select_option("train_box_loss")
    expect(page.get_by_test_id("compare-loss-title")).to_have_text("training box loss (train_box_loss) per epoch")

    table = page.get_by_test_id("compare-table")
    heads = table.locator("thead th[data-task]")
    expect(heads).to_have_count(2)
    expect(heads.nth(0)).to_contain_text("cmp-lr0-001")
    expect(heads.nth(1)).to_have_attribute("title", b)
    lr0 = table.locator('tr[data-name="lr0"]')
    expect(lr0).to_have_class("differs")
    expect(lr0.locator("td")).to_have_text(["0.01", "0.05"])
    expect(lr0.locator("th")).to_contain_text("differs")
    expect(table.locator('tr[data-name="epochs"]')).to_have_class("differs")
    optimizer = table.locator('tr[data-name="optimizer"]')
    expect(optimizer).to_have_class("same")
    expect(optimizer.locator("td")).to_have_text(["SGD", "SGD"])
    highlight = "el => getComputedStyle(el).backgroundColor"
    assert lr0.locator("td").first.evaluate(highlight) != optimizer.locator("td").first.evaluate(highlight)
    expect(table.locator('tr[data-name="mAP50-95"] td')).to_have_count(2)
    page.get_by_test_id("compare-only-differing").check()
    expect(optimizer).to_be_hidden()
    expect(lr0).to_be_visible()
    expect(page.get_by_test_id("compare-hint")).to_have_text("2 selected.")
    for task in (a, b):
        expect(page.locator(f'tr[data-task="{task}"] [data-testid=pick]')).to_be_checked()
    screenshot(page, "ui-compare.png")
    assert errors == []


def test_checkboxes_pick_what_is_compared_and_refusals_are_shown(trained: tuple[str, list[str]],
                                                                 browser: Browser) -> None:
    url, (a, b) = trained
    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{url}/ui#token={TOKEN}")
    pick_a, pick_b = (page.locator(f'tr[data-task="{task}"] [data-testid=pick]') for task in (a, b))
    expect(page.get_by_test_id("compare-open")).to_be_disabled()
    pick_a.check()
    expect(page.get_by_test_id("compare-hint")).to_contain_text("1 selected: select 2 to 6")
    expect(page.get_by_test_id("detail")).to_be_hidden()  # a pick is not a click on the row
    pick_b.check()
    expect(page).to_have_url(f"{url}/ui#compare={a},{b}")  # the selection is the link
    page.get_by_test_id("compare-open").click()
    expect(page.get_by_test_id("compare")).to_have_attribute("data-state", "shown")
    expect(page.get_by_test_id("compare-table").locator("thead th[data-task]")).to_have_count(2)
    pick_a.uncheck()  # one left: nothing to compare
    expect(page.get_by_test_id("compare")).to_be_hidden()
    expect(page).to_have_url(f"{url}/ui#compare={b}")

    # the API's own refusals, from links: one training, and seven
    page.goto(f"{url}/ui#compare={a}")  # a new fragment: the page follows it
    expect(page.get_by_test_id("compare-error")).to_contain_text("1 task id given")
    strangers = [str(uuid.uuid4()) for _ in range(6)]
    page.goto(f"{url}/ui#compare={','.join([a, *strangers])}")
    expect(page.get_by_test_id("compare-error")).to_contain_text("7 task ids given")
    expect(page.get_by_test_id("compare-hint")).to_have_text("7 selected: at most 6 trainings can be compared.")
    expect(page.get_by_test_id("compare-open")).to_be_disabled()
    expect(pick_b).to_be_disabled()  # no seventh pick from the table either
    expect(pick_b).to_have_attribute("title", "at most 6 trainings can be compared")
    page.get_by_test_id("compare-clear").click()
    expect(pick_b).to_be_enabled()
    expect(pick_a).not_to_be_checked()
    expect(page).to_have_url(f"{url}/ui")
    assert errors == []
