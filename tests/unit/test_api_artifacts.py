"""``GET /tasks/{id}/artifacts`` and ``/artifacts/{name}`` over an in-memory backend: the list with each kind, a
streamed local file, a 307 to a presigned URL (signed offline, for the public endpoint) or that URL as JSON
(``?redirect=false``), a plot served inline from a local file (from object storage: tests/integration/
test_api_compare.py, against a real S3 server), and every refusal."""

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
SHA = "0" * 64


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def http(backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIDUNIT", "AWS_SECRET_ACCESS_KEY": "unit-secret",
                       "AWS_ENDPOINT_URL": "http://s3.internal:9000", "AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    settings = ApiSettings(backend="local", auth_token=TOKEN, s3_public_endpoint="https://s3.example.com",
                           artifact_url_seconds=120)
    with TestClient(create_app(settings, backend=backend), headers=AUTH, follow_redirects=False) as client:
        yield client


def finished(backend: MemoryBackend, *artifacts: dict[str, object], output: str | None = None) -> str:
    """A finished task; ``{task}`` in an artifact's uri becomes its id."""
    task = str(uuid.uuid4())
    named = [{**a, "uri": str(a["uri"]).format(task=task)} for a in artifacts]
    return backend.put({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, "artifacts": named},
                       task_id=task, spec={"output": output} if output else None)


def test_the_list_gives_kind_size_sha256_and_a_download_url(http: TestClient, backend: MemoryBackend) -> None:
    task = finished(backend, {"name": "best.pt", "uri": "s3://models/r/t/best.pt", "size": 7, "sha256": SHA},
                    {"name": "best.onnx", "kind": "export", "uri": "s3://models/r/t/best.onnx", "size": 9, "sha256": SHA},
                    {"name": "PR_curve.png", "kind": "plot", "uri": "s3://models/r/t/PR_curve.png", "size": 5,
                     "sha256": SHA},
                    {"name": "notes.txt", "uri": "s3://models/r/t/notes.txt", "size": 1, "sha256": SHA})
    items = http.get(f"/tasks/{task}/artifacts").json()["data"]["artifacts"]
    assert items[0] == {"name": "best.pt", "kind": "weights", "size": 7, "sha256": SHA,
                        "url": f"http://testserver/tasks/{task}/artifacts/best.pt"}
    # best.pt has no kind in this status (an older trainer's): the run's own files are known by name
    assert [item["kind"] for item in items] == ["weights", "export", "plot", None]
    assert http.get(f"/tasks/{backend.put(None)}/artifacts").json()["data"]["artifacts"] == []


def test_an_artifact_in_object_storage_is_a_307_to_a_short_lived_presigned_url(http: TestClient,
                                                                               backend: MemoryBackend) -> None:
    task = finished(backend, {"name": "best.pt", "uri": "s3://models/r/{task}/best.pt", "size": 7, "sha256": SHA},
                    output="s3://models/r")
    answer = http.get(f"/tasks/{task}/artifacts/best.pt")
    assert answer.status_code == 307 and answer.headers["cache-control"] == "no-store"
    where = urlsplit(answer.headers["location"])
    query = parse_qs(where.query)
    assert (where.scheme, where.netloc, where.path) == ("https", "s3.example.com", f"/models/r/{task}/best.pt")
    assert query["X-Amz-Expires"] == ["120"] and "X-Amz-Signature" in query
    assert "unit-secret" not in answer.headers["location"]


def test_redirect_false_answers_the_presigned_url_as_json(http: TestClient, backend: MemoryBackend,
                                                          tmp_path: Path) -> None:
    """For the dashboard: fetch follows a 307 itself, into its page's CSP; it asks for the URL instead."""
    task = finished(backend, {"name": "best.pt", "uri": "s3://models/r/{task}/best.pt", "size": 7, "sha256": SHA},
                    output="s3://models/r")
    answer = http.get(f"/tasks/{task}/artifacts/best.pt", params={"redirect": "false"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    data = answer.json()["data"]
    where = urlsplit(data["url"])
    assert (where.netloc, where.path) == ("s3.example.com", f"/models/r/{task}/best.pt")
    assert (data["name"], data["expires_in"]) == ("best.pt", 120) and "X-Amz-Signature" in where.query
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights")
    local = finished(backend, {"name": "best.pt", "uri": str(weights), "size": 7, "sha256": SHA})
    backend.files[str(weights)] = weights
    streamed = http.get(f"/tasks/{local}/artifacts/best.pt", params={"redirect": "false"})
    assert streamed.status_code == 200 and streamed.content == b"weights"  # the bytes are the answer anyway


@pytest.mark.parametrize(("output", "uri"), [
    (None, "s3://models/r/{task}/best.pt"),  # no output at all
    ("s3://models/r", "s3://other-team-private/secret/model.pt"),  # another bucket
    ("s3://models/r", "s3://models/r/another-task/best.pt"),  # another run under the same output
    ("s3://models/r", "s3://models/r-other/{task}/best.pt"),  # a prefix that only starts the same
])
def test_only_the_runs_own_objects_are_signed(http: TestClient, backend: MemoryBackend, output: str | None,
                                              uri: str) -> None:
    """The bug: the trainer writes status (and a user may pick its image): any s3:// URI there was signed with
    the API's credentials, a presigned link to another team's object for whoever may read the task."""
    task = finished(backend, {"name": "x", "uri": uri, "size": 7, "sha256": SHA}, output=output)
    answer = http.get(f"/tasks/{task}/artifacts/x")
    assert answer.status_code == 404 and "location" not in answer.headers


def test_a_local_file_is_streamed(http: TestClient, backend: MemoryBackend, tmp_path: Path) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights")
    task = finished(backend, {"name": "best.pt", "uri": str(weights), "size": 7, "sha256": SHA})
    backend.files[str(weights)] = weights
    answer = http.get(f"/tasks/{task}/artifacts/best.pt")
    assert answer.status_code == 200 and answer.content == b"weights"
    assert answer.headers["x-checksum-sha256"] == SHA and "best.pt" in answer.headers["content-disposition"]


def test_refusals_say_why(http: TestClient, backend: MemoryBackend) -> None:
    task = finished(backend, {"name": "best.pt", "uri": "/outputs/t/weights/best.pt", "size": 7, "sha256": SHA})
    unreachable = http.get(f"/tasks/{task}/artifacts/best.pt")
    assert unreachable.status_code == 404 and "output in object storage" in unreachable.json()["detail"]
    missing = http.get(f"/tasks/{task}/artifacts/last.pt")
    assert missing.status_code == 404 and "no artifact 'last.pt'" in missing.json()["detail"]
    assert http.get("/tasks/no-such-task/artifacts").status_code == 404
    assert http.get(f"/tasks/{task}/artifacts", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_no_credentials_is_a_503_not_a_crash(http: TestClient, backend: MemoryBackend,
                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    for key in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(key, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    task = finished(backend, {"name": "best.pt", "uri": "s3://models/r/{task}/best.pt", "size": 7, "sha256": SHA},
                    output="s3://models/r")
    answer = http.get(f"/tasks/{task}/artifacts/best.pt")
    assert answer.status_code == 503 and "AWS_ACCESS_KEY_ID" in answer.json()["detail"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 32


def local_plots(backend: MemoryBackend, tmp_path: Path, **files: tuple[bytes, str | None]) -> str:
    """A finished task whose artifacts are local files: ``name=(bytes, kind)``."""
    artifacts = []
    for name, (data, kind) in files.items():
        path = tmp_path / name.replace("_dot_", ".")
        path.write_bytes(data)
        backend.files[str(path)] = path
        artifacts.append({"name": path.name, "uri": str(path), "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest(), **({"kind": kind} if kind else {})})
    return finished(backend, *artifacts)


def test_a_plot_is_served_inline_with_its_image_type(http: TestClient, backend: MemoryBackend,
                                                     tmp_path: Path) -> None:
    task = local_plots(backend, tmp_path, confusion_matrix_dot_png=(PNG, "plot"), val_batch0_pred_dot_jpg=(JPEG, "plot"))
    png = http.get(f"/tasks/{task}/artifacts/confusion_matrix.png", params={"inline": "true"})
    assert png.status_code == 200 and png.content == PNG
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'inline; filename="confusion_matrix.png"'
    assert png.headers["x-content-type-options"] == "nosniff"
    sha = hashlib.sha256(PNG).hexdigest()
    assert png.headers["etag"] == f'"{sha}"' and png.headers["x-checksum-sha256"] == sha
    jpeg = http.get(f"/tasks/{task}/artifacts/val_batch0_pred.jpg", params={"inline": "true"})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg" and jpeg.content == JPEG
    again = http.get(f"/tasks/{task}/artifacts/confusion_matrix.png", params={"inline": "true"},
                     headers={"If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.content == b""  # the browser's copy is still the one
    attachment = http.get(f"/tasks/{task}/artifacts/confusion_matrix.png")  # without inline: as before
    assert attachment.headers["content-type"] == "application/octet-stream"
    assert attachment.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(("name", "data", "kind", "fragment"), [
    ("best.pt", b"weights", None, "is not a plot (its kind: weights)"),  # the kind of an older trainer's best.pt
    ("best.onnx", b"onnx", "export", "is not a plot (its kind: export)"),
    ("notes.txt", b"text", None, "is not a plot:"),
    ("results.csv", b"epoch\n", "plot", "is not a PNG or JPEG image"),  # a plot, but not an image
    ("fake.png", b"<html>", "plot", "is not a PNG image"),
])
def test_only_plot_images_are_served_inline(http: TestClient, backend: MemoryBackend, tmp_path: Path,
                                            name: str, data: bytes, kind: str | None, fragment: str) -> None:
    task = local_plots(backend, tmp_path, **{name.replace(".", "_dot_"): (data, kind)})
    answer = http.get(f"/tasks/{task}/artifacts/{name}", params={"inline": "true"})
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["data"]["errors"]
    assert error["loc"] == ["query", "inline"] and fragment in error["msg"] and "download it without" in error["msg"]
    assert http.get(f"/tasks/{task}/artifacts/{name}").status_code == 200  # the download itself still works


def test_a_plot_over_8_mib_is_not_served_inline(http: TestClient, backend: MemoryBackend, tmp_path: Path) -> None:
    big = PNG + b"\0" * (8 * 1024 * 1024)
    task = local_plots(backend, tmp_path, huge_dot_png=(big, "plot"))
    answer = http.get(f"/tasks/{task}/artifacts/huge.png", params={"inline": "true"})
    assert answer.status_code == 422 and f"is {len(big)} bytes" in answer.text


def test_inline_keeps_the_ownership_check(http: TestClient, backend: MemoryBackend) -> None:
    """An s3:// plot outside the run's own output is refused before anything is read with the API's credentials."""
    task = finished(backend, {"name": "x.png", "kind": "plot", "uri": "s3://other-team/secret/x.png", "size": 7,
                              "sha256": SHA}, output="s3://models/r")
    answer = http.get(f"/tasks/{task}/artifacts/x.png", params={"inline": "true"})
    assert answer.status_code == 404 and "does not lie under this training's output" in answer.json()["detail"]
