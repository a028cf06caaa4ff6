"""The dashboard says what its numbers are (issue 19), in headless Chromium against the real API over a
backend that holds trainings as the test writes them:

* mAP in the table is labelled by where it comes from: best.pt's final validation for a succeeded training,
  the last epoch's otherwise (the detail of a running training says "last epoch's" too);
* a cancelled training reads "Cancelled", not "Cancelled: cancelled";
* a training that ended before its first epoch shows one line instead of two empty charts;
* the page has an icon, and ``/favicon.ico`` answers one (no 404 in every log).

Screenshot: ``test-output/ui-labels.png``.
"""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Response, expect
from test_ui import open_page, screenshot

from fakes import TOKEN, MemoryBackend
from serving import serve
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
FINAL = {"mAP50": 0.8123, "mAP50-95": 0.5, "precision": 0.7, "recall": 0.6, "f1_score": 0.6462}
EPOCHS = [{"epoch": n, "mAP50": 0.1 * n, "mAP50-95": 0.05 * n, "train_box_loss": 2.0 / n} for n in (1, 2, 3)]



def test_the_dashboard_labels_its_numbers_and_says_what_is_missing(tmp_path: Path, browser: Browser) -> None:
    backend = MemoryBackend()
    succeeded = backend.put({"phase": "Succeeded", "stage": "completed", "progress": 100.0, "currentEpoch": 3,
                             "totalEpochs": 3, "metrics": EPOCHS[-1], "history": EPOCHS, "finalMetrics": FINAL})
    running = backend.put({"phase": "Running", "stage": "training", "progress": 10.0, "currentEpoch": 2,
                           "totalEpochs": 20, "metrics": {"epoch": 2, "mAP50": 0.25}, "history": EPOCHS[:2]})
    early = backend.put({"phase": "Failed", "stage": "failed", "trainingFailure": {
        "reason": "DatasetInvalid", "message": "data.yaml: no images in images/train"}})
    cancelled = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 0, "totalEpochs": 20})
    backend.cancel(cancelled)
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, sse_poll_interval=0.2,
                           local_gpus=0)
    with serve(create_app(settings, backend=backend)) as url:
        errors: list[str] = []
        failed_requests: list[str] = []
        page = open_page(browser, errors)

        def note(response: Response) -> None:
            if response.status >= 400:
                failed_requests.append(f"{response.status} {response.url}")

        page.on("response", note)
        page.goto(f"{url}/ui#token={TOKEN}")
        best = page.locator(f'tr[data-task="{succeeded}"] td').nth(4)
        expect(best).to_have_text("0.812 best.pt")
        expect(best).to_have_attribute("title", "mAP50 of best.pt (final validation)")
        expect(page.locator(f'tr[data-task="{succeeded}"] td').nth(5)).to_have_attribute("data-source", "best.pt")
        last = page.locator(f'tr[data-task="{running}"] td').nth(4)
        expect(last).to_have_text("0.250 last epoch")
        expect(last).to_have_attribute("title", "mAP50 of the last epoch")
        expect(page.locator("#tasks th", has_text="mAP50").first).to_have_attribute("title", "best.pt's final value "
                                                                                  "once a training succeeded; "
                                                                                  "before that, the last epoch's")

        page.locator(f'tr[data-task="{running}"]').click()
        expect(page.get_by_test_id("detail-text")).to_contain_text("last epoch's mAP50 0.250")
        expect(page.get_by_test_id("map-chart").locator("canvas")).to_have_count(1)
        expect(page.get_by_test_id("no-epochs")).to_be_hidden()

        page.locator(f'tr[data-task="{early}"]').click()
        expect(page.get_by_test_id("no-epochs")).to_have_text(
            "No epochs were recorded: the training ended before its first epoch.")
        expect(page.get_by_test_id("curves")).to_be_hidden()
        expect(page.get_by_test_id("detail-error")).to_have_text("DatasetInvalid: data.yaml: no images in "
                                                                  "images/train")
        screenshot(page, "ui-labels.png")

        page.locator(f'tr[data-task="{cancelled}"]').click()
        expect(page.get_by_test_id("detail-state")).to_have_text("cancelled")
        expect(page.get_by_test_id("detail-error")).to_have_text("Cancelled")  # once, not "Cancelled: cancelled"

        page.locator(f'tr[data-task="{succeeded}"]').click()
        expect(page.get_by_test_id("curves")).to_be_visible()
        expect(page.get_by_test_id("detail")).to_have_attribute("data-epochs", "3")
        expect(page.get_by_test_id("final")).to_contain_text("0.8123")

        icon = page.evaluate("() => document.querySelector('link[rel=icon]').href")
        for address in (icon, f"{url}/favicon.ico"):
            answer = httpx.get(address)
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml", address
            assert answer.content.startswith(b"<svg")
        assert failed_requests == [] and errors == []
