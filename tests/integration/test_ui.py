"""The /ui page in headless Chromium (Debian's, driven by Playwright) against the real API and local backend.

* A real ultralytics training: followed live to success, curves and final metrics drawn.
* 50 unfinished trainings at once (fast stand-in trainers, tests/standin.py) in one tab: every row keeps
  moving to the end over ONE event stream; filters, paging past 100, local times, cancel, a deep link.
* A finished training's artifacts: listed (size, sha256) and downloaded through the page with its bearer
  token, from the API (local files) or from a presigned URL (object storage, a real SeaweedFS); the section
  stays away from running and failed trainings.
* /docs renders with every request outside the API refused (no CDN), and / leads to /ui.

Screenshots go to ``test-output/`` (ui-dashboard.png, ui-50-live.png, ui-deep-link.png, ui-artifacts.png,
ui-docs.png).
"""

import hashlib
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from fakes import AUTH, TOKEN, MemoryBackend
from s3server import S3Server
from serving import serve
from standin import standin_python
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"



def open_page(browser: Browser, errors: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def screenshot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / name), full_page=True)


def local_settings(tmp_path: Path, dataset3: Path) -> ApiSettings:
    """The local backend with token auth, polling fast, trainers on the CPU."""
    return ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, poll_interval=0.2,
                       sse_poll_interval=0.2, allowed_roots=[dataset3.parent, tmp_path], local_gpus=0)


def train(url: str, dataset3: Path, name: str, *, epochs: int) -> str:
    """POST /train a small real training on the CPU; its task id."""
    body = {"model": "yolov8n.yaml", "data": str(dataset3), "epochs": epochs, "imgsz": 64, "batch": 16,
            "name": name, "hyperparameters": {"workers": 0, "seed": 0}}
    return str(httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"])


def test_dashboard_follows_a_real_training(tmp_path: Path, dataset3: Path, monkeypatch: pytest.MonkeyPatch,
                                           browser: Browser) -> None:
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    settings = local_settings(tmp_path, dataset3)
    with serve(create_app(settings)) as url:
        task = train(url, dataset3, "ui-shapes", epochs=4)
        errors: list[str] = []
        page = open_page(browser, errors)
        page.goto(f"{url}/ui#token={TOKEN}")
        row = page.locator(f'tr[data-task="{task}"]')
        expect(row).to_be_visible(timeout=20_000)
        assert "token" not in page.url  # the fragment is consumed and removed
        row.click()
        bar = row.get_by_test_id("progress-bar")
        page.wait_for_function(  # the bar moves while training (pushed by the event stream)
            "el => parseFloat(el.style.width) > 0 && parseFloat(el.style.width) < 100", arg=bar.element_handle(),
            timeout=180_000)
        expect(row.locator(".badge")).to_have_text("success", timeout=240_000)
        expect(bar).to_have_attribute("style", "width: 100%;")
        detail = page.get_by_test_id("detail")
        expect(detail).to_have_attribute("data-epochs", "4", timeout=20_000)
        for chart in ("map-chart", "loss-chart"):
            expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
            expect(page.get_by_test_id(chart).locator(".u-legend")).to_contain_text("epoch")
        final = page.get_by_test_id("final")
        expect(final).to_contain_text("mAP50-95")
        expect(final.locator("tr")).to_have_count(5)  # a table of the spec's five metrics, not JSON
        expect(page.get_by_test_id("detail-info")).to_contain_text("best.pt")
        expect(page.get_by_test_id("detail-text")).to_contain_text("stopped by epochs")
        screenshot(page, "ui-dashboard.png")
        assert errors == []


# Records each row whose progress bar was ever seen part-way, as rows are updated or re-rendered.
MOVED = """() => {
  window.moved = new Set();
  const look = (bar) => {
    const width = parseFloat(bar.style.width);
    if (width > 0 && width < 100) window.moved.add(bar.closest("tr").dataset.task);
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      const node = change.target;
      if (node.dataset && node.dataset.testid === "progress-bar") look(node);
      for (const added of change.addedNodes) if (added.querySelectorAll) added.querySelectorAll("[data-testid=progress-bar]").forEach(look);
    }
  }).observe(document.querySelector("#tasks tbody"), {subtree: true, childList: true, attributes: true,
                                                     attributeFilter: ["style"]});
}"""


def submit(url: str, data: Path, epochs: int, name: str, **extra: Any) -> str:
    body = {"model": "yolov8n.yaml", "data": str(data), "epochs": epochs, "name": name, **extra}
    return str(httpx.post(f"{url}/train", json=body, headers=AUTH).json()["data"]["task_id"])


def test_fifty_live_trainings_in_one_tab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser) -> None:
    monkeypatch.setenv("STANDIN_EPOCH_SECONDS", "0.6")
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, poll_interval=0.1,
                           sse_poll_interval=0.25, max_parallel=50, local_gpus=0, allowed_roots=[tmp_path],
                           trainer_python=standin_python(tmp_path))
    data = tmp_path / "d.yaml"
    data.write_text("train: x\n")
    with serve(create_app(settings)) as url:
        done = [submit(url, data, 1, f"done-{i}") for i in range(60)]  # history to page through
        errors: list[str] = []
        page = open_page(browser, errors)
        streams: list[str] = []
        page.on("request", lambda request: streams.append(request.url) if "events" in request.url else None)
        page.goto(f"{url}/ui#token={TOKEN}")
        expect(page.get_by_test_id("page")).to_have_text("1–50 of 60", timeout=60_000)
        page.evaluate(MOVED)
        live = [submit(url, data, 15, f"live-{i:02d}", hyperparameters={"lr0": 0.01, "time": 2.0})
                for i in range(49)]
        victim = submit(url, data, 1000, "long-one")  # the 50th: still running whenever the test cancels it
        live.insert(3, victim)
        rows = page.locator("tr[data-testid=task-row]")
        expect(page.get_by_test_id("page")).to_have_text("1–50 of 110", timeout=30_000)
        # every one of the 50 rows shows a bar part-way (pushed live), whatever order they train in
        page.wait_for_function("ids => ids.every(id => window.moved.has(id))", arg=live, timeout=180_000)
        page.locator(f'tr[data-task="{victim}"]').click()
        expect(page.get_by_test_id("detail-text")).to_contain_text("training: epoch")
        expect(page.get_by_test_id("detail-state")).to_have_text("running")
        screenshot(page, "ui-50-live.png")
        page.get_by_test_id("detail-cancel").click()
        expect(page.locator(f'tr[data-task="{victim}"] .badge')).to_have_text("cancelled", timeout=30_000)
        expect(page.get_by_test_id("detail-state")).to_have_text("cancelled")
        expect(page.locator(f'tr[data-task="{victim}"] [data-testid=cancel]')).to_be_hidden()
        detail_top = page.get_by_test_id("detail").bounding_box()
        table_top = page.get_by_test_id("tasks").bounding_box()
        assert detail_top and table_top and detail_top["y"] < table_top["y"]  # no scrolling past the table
        canvas = page.get_by_test_id("map-chart").locator("canvas").bounding_box()
        assert canvas and canvas["width"] > 1000  # the page's width, not a thumbnail
        for task in live:
            if task != victim:
                expect(page.locator(f'tr[data-task="{task}"] .badge')).to_have_text("success", timeout=120_000)
        assert streams == [f"{url}/tasks/events"], streams  # ONE stream for 50 live rows, never one per row
        watched = live[7]
        page.locator(f'tr[data-task="{watched}"]').click()
        expect(page.get_by_test_id("detail-text")).to_contain_text("stopped by time limit")
        expect(page.get_by_test_id("hyperparameters")).to_contain_text("lr0")
        expect(page.get_by_test_id("detail")).to_have_attribute("data-epochs", "15")
        ticks = page.evaluate("() => Charts.plots.map.axes[0].values(Charts.plots.map, [1, 1.5, 2, 2.5, 3])")
        assert ticks == ["1", "", "2", "", "3"]  # whole epochs only
        created = page.locator(f'tr[data-task="{live[0]}"] td').nth(6).inner_text()
        assert "T" not in created and "Z" not in created  # local time, not the raw UTC stamp
        page.get_by_test_id("next").click()
        page.get_by_test_id("next").click()
        expect(page.get_by_test_id("page")).to_have_text("101–110 of 110")
        expect(rows).to_have_count(10)
        assert set(page.locator("tr[data-testid=task-row]").evaluate_all("rs => rs.map(r => r.dataset.task)")) \
            <= set(done)
        page.get_by_role("button", name="cancelled").click()
        expect(page.get_by_test_id("page")).to_have_text("1–1 of 1")
        page.get_by_role("button", name="succeeded").click()
        expect(page.get_by_test_id("page")).to_have_text("1–50 of 109")
        deep = open_page(browser, errors)
        deep.goto(f"{url}/ui#token={TOKEN}&task={watched}")
        expect(deep.get_by_test_id("detail")).to_be_visible()
        expect(deep.get_by_test_id("detail-state")).to_have_text("success")
        expect(deep.get_by_test_id("final")).to_contain_text("f1_score")
        screenshot(deep, "ui-deep-link.png")
        assert errors == []


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_finished_trainings_artifacts_are_listed_and_downloaded(tmp_path: Path, dataset3: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   browser: Browser) -> None:
    """best.pt and the rest, from the run directory: the API streams them to the page's token-carrying fetch
    (a plain link would download the 401's JSON under the name best.pt, and the sha256 would not match)."""
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    settings = local_settings(tmp_path, dataset3)
    with serve(create_app(settings)) as url:
        task = train(url, dataset3, "ui-artifacts", epochs=1)
        errors: list[str] = []
        page = open_page(browser, errors)
        page.goto(f"{url}/ui#token={TOKEN}&task={task}")
        expect(page.get_by_test_id("detail-state")).to_have_text("success", timeout=240_000)
        listed = {item["name"]: item for item in
                  httpx.get(f"{url}/tasks/{task}/artifacts", headers=AUTH).json()["data"]["artifacts"]}
        assert "best.pt" in listed
        rows = page.get_by_test_id("artifacts").locator("tr[data-testid=artifact]")
        expect(rows).to_have_count(len([item for item in listed.values() if item["kind"] != "plot"]))  # plots: gallery
        best = page.locator('tr[data-testid=artifact][data-name="best.pt"]')
        expect(best.locator("td").first).to_have_text("best.pt")
        expect(best.locator("td").nth(1)).to_have_text(re.compile(r"^\d+\.\d (KiB|MiB)$"))
        sha = best.locator("code.sha256")
        expect(sha).to_have_attribute("title", f"sha256 {listed['best.pt']['sha256']}")
        expect(sha).to_have_text(listed["best.pt"]["sha256"])  # selecting it copies the whole value...
        assert sha.evaluate("el => el.scrollWidth > el.clientWidth")  # ...while the cell shows its start
        link = best.get_by_test_id("artifact-download")
        expect(link).to_have_attribute("href", f"/tasks/{task}/artifacts/best.pt")
        with page.expect_download() as downloading:
            link.click()
        download = downloading.value
        assert download.suggested_filename == "best.pt"
        assert sha256_of(Path(download.path())) == listed["best.pt"]["sha256"]
        expect(page.get_by_test_id("artifacts-error")).to_be_hidden()
        screenshot(page, "ui-artifacts.png")
        assert errors == []


def test_artifacts_in_object_storage_and_unfinished_trainings(tmp_path: Path, s3_server: S3Server,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              browser: Browser) -> None:
    """An artifact in a bucket downloads from its presigned URL (the page's CSP keeps fetch on the API, so it
    asks the API for the URL and navigates there); one on a volume the API cannot read says why; running,
    failed and artifact-less trainings show no rows."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = s3_server.make_bucket(f"ui-{secrets.token_hex(4)}")
    stored, weights = str(uuid.uuid4()), secrets.token_bytes(200_000)
    s3_server.client().put_object(Bucket=bucket, Key=f"runs/{stored}/best.pt", Body=weights)
    digest = hashlib.sha256(weights).hexdigest()
    backend = MemoryBackend()
    done = {"phase": "Succeeded", "stage": "completed", "progress": 100.0, "finalMetrics": {
        "mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}}
    backend.put({**done, "artifacts": [{"name": "best.pt", "uri": f"s3://{bucket}/runs/{stored}/best.pt",
                                        "size": len(weights), "sha256": digest}]},
                task_id=stored, spec={"output": f"s3://{bucket}/runs"})
    on_volume = backend.put({**done, "artifacts": [{"name": "best.pt", "uri": "/outputs/x/weights/best.pt",
                                                    "size": 7, "sha256": "0" * 64}]})
    empty = backend.put(done)
    running = backend.put({"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 20,
                           "artifacts": [{"name": "last.pt", "uri": "/outputs/r/last.pt", "size": 7, "sha256": "1" * 64}]})
    failed = backend.put({"phase": "Failed", "stage": "failed", "reason": "DatasetInvalid", "message": "bad label",
                          "trainingFailure": {"reason": "DatasetInvalid", "message": "bad label"}})
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, sse_poll_interval=0.2,
                           local_gpus=0)
    with serve(create_app(settings, backend=backend)) as url:
        errors: list[str] = []
        page = open_page(browser, errors)
        page.goto(f"{url}/ui#token={TOKEN}")
        artifacts = page.get_by_test_id("artifacts")
        page.locator(f'tr[data-task="{stored}"]').click()
        row = artifacts.locator('tr[data-testid=artifact][data-name="best.pt"]')
        expect(row.locator("td").nth(1)).to_have_text("195.3 KiB")
        with page.expect_download() as downloading:
            row.get_by_test_id("artifact-download").click()
        download = downloading.value
        assert download.url.startswith(f"{s3_server.endpoint}/{bucket}/runs/{stored}/best.pt?")
        assert download.suggested_filename == "best.pt"
        assert sha256_of(Path(download.path())) == digest
        page.locator(f'tr[data-task="{on_volume}"]').click()
        artifacts.get_by_test_id("artifact-download").click()
        expect(page.get_by_test_id("artifacts-error")).to_contain_text("object storage")
        page.locator(f'tr[data-task="{empty}"]').click()
        expect(artifacts).to_have_text(re.compile("no artifacts"))
        expect(page.get_by_test_id("artifacts-error")).to_be_hidden()
        for task, shown in ((running, "running"), (failed, "failed")):
            page.locator(f'tr[data-task="{task}"]').click()
            expect(page.get_by_test_id("detail-state")).to_have_text(shown)
            expect(artifacts).to_be_hidden()  # hidden by the same render that wrote the state
        assert errors == []


def test_docs_work_offline_and_the_root_leads_to_the_dashboard(tmp_path: Path, browser: Browser) -> None:
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", auth_token=TOKEN, local_gpus=0)
    with serve(create_app(settings)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside: list[str] = []

        def only_the_api(route: Route) -> None:
            if route.request.url.startswith(url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_api)
        page.goto(f"{url}/docs")
        expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(timeout=30_000)
        expect(page.locator(".swagger-ui")).to_contain_text("/task_status/{task_id}")
        screenshot(page, "ui-docs.png")
        assert outside == []
        page.goto(url)
        assert page.url == f"{url}/ui"
