"""The /ui page in headless Chromium (Debian's, driven by Playwright) against a real local training.

The page must show the training in its table with a moving progress bar, follow it live through the
events endpoint to success, and draw the mAP and loss curves from ``/tasks/{id}/metrics``. A screenshot is
written to ``test-output/ui-dashboard.png``.
"""

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from fakes import AUTH, TOKEN
from serving import serve
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("YOLO_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: without the background-networking ones Chromium keeps dialling out.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def test_dashboard_follows_a_real_training(tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)"
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, poll_interval=0.2,
                           sse_poll_interval=0.2, allowed_roots=[dataset3.parent, tmp_path])
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 4, "imgsz": 64, "batch": 16, "gpus": 0,
            "name": "ui-shapes", "hyperparameters": {"workers": 0, "seed": 0}}
    with serve(create_app(settings)) as url, sync_playwright() as playwright:
        task = httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{url}/ui#token={TOKEN}")
            row = page.locator(f'tr[data-task="{task}"]')
            expect(row).to_be_visible(timeout=20_000)
            assert "token" not in page.url  # the fragment is consumed and removed
            row.click()
            bar = row.get_by_test_id("progress-bar")
            page.wait_for_function(  # the bar moves while training (pushed by the events endpoint)
                "el => parseFloat(el.style.width) > 0 && parseFloat(el.style.width) < 100", arg=bar.element_handle(),
                timeout=180_000)
            expect(row.locator("td").nth(1)).to_have_text("success", timeout=240_000)
            expect(bar).to_have_attribute("style", "width: 100%;")
            detail = page.get_by_test_id("detail")
            expect(detail).to_have_attribute("data-epochs", "4", timeout=20_000)
            for chart in ("map-chart", "loss-chart"):
                expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
                expect(page.get_by_test_id(chart).locator(".u-legend")).to_contain_text("epoch")
            expect(page.get_by_test_id("final")).to_contain_text("mAP50-95")
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "ui-dashboard.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
