"""A finished training's plots in the dashboard (issue 20), in headless Chromium against the real API, local
backend and a real (one-epoch) ultralytics training:

* the detail view shows the plots as a gallery of captioned thumbnails, each fetched with the bearer token
  (``?inline=true``) only once it scrolls into view, and shown from a ``blob:`` URL the page's CSP allows;
* the confusion matrix and a predictions image (``val_batch*_pred.jpg``) are real PNG / JPEG bytes, the same
  bytes as the listed sha256, and decode in the page (``naturalWidth > 0``);
* a click enlarges a plot in a dialog (arrows step through, Escape closes, focus returns to the thumbnail);
* the quality gate's outcome shows as a badge; plots stay out of the artifacts table (the gallery has them).

And from the envelope (``GET /task_status/{id}``) of trainings a test backend holds as written: a training
that missed its quality gate says so once, and keeps its weights and its validated exports with their
figures; a training in its ``exporting`` stage shows which format and step, live.

Screenshots: ``test-output/ui-gallery.png``, ``test-output/ui-lightbox.png``, ``test-output/ui-gate.png``.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect
from test_ui import OUTPUT, local_settings, open_page, screenshot

from fakes import AUTH, TOKEN, MemoryBackend
from plotting import plots_drawn  # noqa: F401 - this module's trainings draw plots
from serving import serve
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff"}


def finished(url: str, task: str) -> dict[str, Any]:
    """The training's row once it has ended (a real training: a minute at most on two CPU cores)."""
    def ended() -> dict[str, Any] | None:
        row = httpx.get(f"{url}/tasks/{task}", headers=AUTH).json()["data"]
        return row if row["status"] in ("success", "failure") else None

    row: dict[str, Any] = eventually(ended, timeout=300, interval=0.5)
    assert row["status"] == "success", row
    return row


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset3: Path) -> Iterator[tuple[str, str]]:
    """The API over the local backend, and one finished one-epoch training with plots and a quality gate."""
    tmp = tmp_path_factory.mktemp("ui-gallery")
    with pytest.MonkeyPatch.context() as patch, serve(create_app(local_settings(tmp, dataset3))) as url:
        patch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
        body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 1, "imgsz": 64, "batch": 16,
                "name": "ui-gallery", "hyperparameters": {"workers": 0, "seed": 0},
                "successCriteria": {"mAP50": 0.0}}  # always met: the badge, without a training that fails
        task = str(httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"])
        finished(url, task)
        yield url, task


def natural_width(page: Page, name: str) -> int:
    return int(page.locator(f'[data-testid=plot][data-name="{name}"] img').evaluate("img => img.naturalWidth"))


def test_the_gallery_loads_real_plots_when_scrolled_into_view_and_enlarges_them(trained: tuple[str, str],
                                                                                browser: Browser) -> None:
    url, task = trained
    listed = {item["name"]: item for item in
              httpx.get(f"{url}/tasks/{task}/artifacts", headers=AUTH).json()["data"]["artifacts"]}
    plots = {name for name, item in listed.items() if item["kind"] == "plot"}
    predictions = sorted(name for name in plots if name.startswith("val_batch") and name.endswith("_pred.jpg"))
    assert "confusion_matrix.png" in plots and predictions, f"no plots among the artifacts: {sorted(listed)}"
    assert "img-src 'self' blob: data:" in httpx.get(f"{url}/ui").headers["content-security-policy"]

    errors: list[str] = []
    page = open_page(browser, errors)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    fetched: dict[str, tuple[int, str, bytes]] = {}  # artifact name -> the answer the page got
    asked: list[Request] = []

    def relay(route: Route) -> None:  # passes each image request on to the API, keeping a copy of the answer
        asked.append(route.request)
        answer = route.fetch()
        name = route.request.url.split("/artifacts/")[1].split("?")[0]
        fetched[name] = (answer.status, answer.headers.get("content-type", ""), answer.body())
        route.fulfill(response=answer)

    page.route("**/artifacts/*?inline=true", relay)
    page.goto(f"{url}/ui#token={TOKEN}&task={task}")
    gallery = page.get_by_test_id("gallery")
    tiles = gallery.get_by_test_id("plot")
    expect(tiles).to_have_count(len(plots), timeout=20_000)
    expect(page.get_by_test_id("detail")).to_have_attribute("data-epochs", "1")  # the page is laid out
    expect(page.get_by_test_id("map-chart").locator("canvas")).to_have_count(1)
    box = gallery.bounding_box()
    assert box and box["y"] > 900, box  # below the fold: nothing of it is fetched yet
    assert asked == [] and page.locator("[data-testid=plot] img[src]").count() == 0

    matrix = gallery.locator('[data-testid=plot][data-name="confusion_matrix.png"]')
    expect(matrix.locator("figcaption")).to_contain_text("confusion matrix")
    expect(matrix.locator("img")).to_have_attribute("alt", "confusion matrix (confusion_matrix.png)")
    matrix.scroll_into_view_if_needed()
    expect(matrix).to_have_attribute("data-state", "loaded")
    prediction = gallery.locator(f'[data-testid=plot][data-name="{predictions[0]}"]')
    prediction.scroll_into_view_if_needed()
    expect(prediction).to_have_attribute("data-state", "loaded")
    expect(prediction.locator("figcaption")).to_contain_text("predictions")
    for name in ("confusion_matrix.png", predictions[0]):
        assert natural_width(page, name) > 0, name
        src = page.locator(f'[data-testid=plot][data-name="{name}"] img').get_attribute("src")
        assert src and src.startswith("blob:"), src
        status, media_type, body = fetched[name]
        assert status == 200 and len(body) > 0, name
        assert body.startswith(MAGIC[Path(name).suffix]), (name, body[:8])
        assert media_type == ("image/png" if name.endswith(".png") else "image/jpeg"), media_type
        assert hashlib.sha256(body).hexdigest() == listed[name]["sha256"], name
    assert all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in asked)
    screenshot(page, "ui-gallery.png")

    # click to enlarge; arrows step through; Escape closes and gives the focus back to the thumbnail
    lightbox = page.get_by_test_id("lightbox")
    thumbnail = matrix.get_by_role("button")
    thumbnail.click()
    expect(lightbox).to_be_visible()
    expect(page.get_by_test_id("lightbox-caption")).to_contain_text("confusion matrix — confusion_matrix.png")
    enlarged = page.get_by_test_id("lightbox-image")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=enlarged.element_handle())
    big, small = enlarged.bounding_box(), thumbnail.bounding_box()
    assert big and small and big["width"] > 2 * small["width"], (big, small)
    page.screenshot(path=str(OUTPUT / "ui-lightbox.png"))  # the viewport: what the dialog covers
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("lightbox-caption")).not_to_contain_text("confusion_matrix.png")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(thumbnail).to_be_focused()
    page.keyboard.press("Enter")  # a thumbnail is a button: the keyboard opens it too
    expect(lightbox).to_be_visible()
    page.get_by_test_id("lightbox-close").click()
    expect(lightbox).to_be_hidden()
    assert errors == []


def test_a_finished_training_shows_its_quality_gate_and_keeps_plots_out_of_the_artifacts_table(
        trained: tuple[str, str], browser: Browser) -> None:
    url, task = trained
    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{url}/ui#token={TOKEN}&task={task}")
    expect(page.get_by_test_id("quality-gate")).to_have_text("quality gate met", timeout=20_000)
    expect(page.get_by_test_id("quality-gate-message")).to_contain_text("mAP50")
    rows = page.get_by_test_id("artifacts").locator("tr[data-testid=artifact]")
    expect(rows.first).to_be_visible()
    shown = set(rows.evaluate_all("rows => rows.map(row => row.dataset.name)"))
    assert "best.pt" in shown and not {name for name in shown if name.endswith((".png", ".jpg"))}, shown
    expect(page.get_by_test_id("exports")).to_be_hidden()  # this training asked for none
    expect(page.get_by_test_id("export-progress")).to_be_hidden()
    assert errors == []


def test_a_missed_quality_gate_keeps_verified_exports_and_exporting_shows_its_step(tmp_path: Path,
                                                                                  browser: Browser) -> None:
    backend = MemoryBackend()
    sha = "a" * 64
    final = {"mAP50": 0.41, "mAP50-95": 0.3, "precision": 0.5, "recall": 0.4, "f1_score": 0.4444}
    onnx = {"format": "onnx", "artifact": "best.onnx", "uri": "/runs/g/weights/best.onnx", "size": 12_345_678,
            "sha256": sha, "mAP50": 0.4, "mAP50-95": 0.299, "referenceMAP50": 0.41, "referenceMAP50-95": 0.3,
            "deltaMAP50": -0.01, "deltaMAP50-95": -0.001}
    message = "quality gate not met: mAP50 0.41 < 0.5"
    gated = backend.put({"phase": "Failed", "stage": "completed", "progress": 100.0, "currentEpoch": 3,
                         "totalEpochs": 3, "finalMetrics": final, "qualityGate": {"passed": False, "message": message},
                         "exports": [onnx], "artifacts": [
                             {"name": "best.pt", "kind": "weights", "uri": "/runs/g/weights/best.pt", "size": 6,
                              "sha256": sha},
                             {"name": "best.onnx", "kind": "export", "uri": onnx["uri"], "size": onnx["size"],
                              "sha256": sha}]},
                        spec={"export": ["onnx"], "successCriteria": {"mAP50": 0.5}})
    running = {"phase": "Running", "stage": "exporting", "progress": 99.0, "currentEpoch": 3, "totalEpochs": 3,
               "exportProgress": {"format": "onnx", "done": 0, "total": 2, "step": "validating"}}
    exporting = backend.put(running, spec={"export": ["onnx", "torchscript"]})
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, sse_poll_interval=0.2,
                           local_gpus=0)
    with serve(create_app(settings, backend=backend)) as url:
        errors: list[str] = []
        page = open_page(browser, errors)
        page.goto(f"{url}/ui#token={TOKEN}&task={gated}")
        expect(page.get_by_test_id("detail-state")).to_have_text("failed")
        expect(page.get_by_test_id("quality-gate")).to_have_text("quality gate not met")
        expect(page.get_by_test_id("quality-gate")).to_have_attribute("data-passed", "false")
        expect(page.get_by_test_id("detail-error")).to_have_text(f"QualityGateNotMet: {message}")
        expect(page.get_by_test_id("quality-gate-message")).to_be_hidden()  # said once, in the error
        artifacts = page.get_by_test_id("artifacts").locator("tr[data-testid=artifact]")
        expect(artifacts).to_have_count(2)  # a near miss keeps its weights and exports downloadable
        export = page.get_by_test_id("exports").locator('tr[data-format="onnx"] td')
        expect(export).to_have_text(["onnx", "best.onnx", "11.8 MiB", "0.4000", "0.2990", "0.3000", "-0.0010"])
        expect(page.get_by_test_id("export-progress")).to_be_hidden()
        expect(page.get_by_test_id("gallery")).to_be_hidden()  # no plots: no gallery
        screenshot(page, "ui-gate.png")

        page.locator(f'tr[data-task="{exporting}"]').click()
        progress = page.get_by_test_id("export-progress")
        expect(progress).to_have_text("exporting onnx: validating (0 of 2 format(s) done)")
        expect(page.get_by_test_id("detail-text")).to_contain_text("exporting: epoch 3/3")
        expect(page.get_by_test_id("quality-gate")).to_be_hidden()
        expect(page.get_by_test_id("exports")).to_be_hidden()
        backend.put({**running, "exportProgress": {"format": "torchscript", "done": 1, "total": 2,
                                                   "step": "exporting"}}, task_id=exporting)
        expect(progress).to_have_text("exporting torchscript: exporting (1 of 2 format(s) done)")  # live
        page.close()  # its event stream with it: the server stops at once
        assert errors == []
