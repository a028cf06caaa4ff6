"""The trainer's object-storage side against a real S3 server (SeaweedFS): fetching datasets and weights
(cached by ETag), uploading and restoring a run's artifacts, and each failure with its reason and without
credentials in its message."""

import secrets
import zipfile
from pathlib import Path
from typing import Any

import pytest

from s3server import S3Server, closed_endpoint
from yolo_crd.locations import S3Uri
from yolo_crd.status import Reason
from yolo_trainer.artifacts import Uploader, restore_run
from yolo_trainer.errors import TrainingFailure
from yolo_trainer.fetch import cache_dir, fetch_dataset, fetch_model
from yolo_trainer.storage import ObjectStore, sha256_of


@pytest.fixture
def creds(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


def bucket(server: S3Server) -> str:
    return server.make_bucket(f"t-{secrets.token_hex(4)}")


def test_a_dataset_folder_is_fetched_once_then_only_what_changed(creds: S3Server, dataset3: Path,
                                                                   tmp_path: Path) -> None:
    name = bucket(creds)
    creds.upload_tree(dataset3.parent, name, "shapes")
    uri = f"s3://{name}/shapes/{dataset3.name}"
    reports: list[dict[str, Any]] = []
    local = fetch_dataset(ObjectStore(), uri, tmp_path, reports.append)
    assert local.read_text() == dataset3.read_text()
    assert len(list(local.parent.rglob("*.png"))) == len(list(dataset3.parent.rglob("*.png"))) > 0
    assert reports[-1]["files"] == reports[-1]["totalFiles"] and reports[-1]["cached"] is False
    assert reports[-1]["doneBytes"] == reports[-1]["totalBytes"] > 0
    again: list[dict[str, Any]] = []
    assert fetch_dataset(ObjectStore(), uri, tmp_path, again.append) == local  # a retried pod: nothing fetched
    assert again[-1]["cached"] is True
    label = next(p for p in sorted(dataset3.parent.rglob("*.txt")))
    relative = label.relative_to(dataset3.parent).as_posix()
    creds.client().put_object(Bucket=name, Key=f"shapes/{relative}", Body=b"0 0.5 0.5 0.2 0.2\n")
    third: list[dict[str, Any]] = []
    fetch_dataset(ObjectStore(), uri, tmp_path, third.append)
    assert third[-1]["cached"] is False and (local.parent / relative).read_bytes() == b"0 0.5 0.5 0.2 0.2\n"


def test_a_zip_next_to_the_yaml_is_fetched_and_extracted(creds: S3Server, dataset3: Path, tmp_path: Path) -> None:
    name = bucket(creds)
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in dataset3.parent.rglob("*"):
            if path.is_file() and path != dataset3:
                bundle.write(path, path.relative_to(dataset3.parent).as_posix())
    client = creds.client()
    client.upload_file(str(dataset3), name, "zipped/data.yaml")
    client.upload_file(str(archive), name, "zipped/data.zip")
    client.put_object(Bucket=name, Key="zipped/unrelated/big.bin", Body=b"x" * 1000)  # not fetched: the zip is
    local = fetch_dataset(ObjectStore(), f"s3://{name}/zipped/data.yaml", tmp_path / "out", lambda _: None)
    assert local.name == "data.yaml" and list(local.parent.rglob("*.png"))
    assert not (local.parent / "unrelated").exists()


def test_weights_are_fetched_by_etag(creds: S3Server, tmp_path: Path) -> None:
    name = bucket(creds)
    creds.client().put_object(Bucket=name, Key="w/model.pt", Body=b"weights")
    uri = f"s3://{name}/w/model.pt"
    local = fetch_model(ObjectStore(), uri, tmp_path, lambda _: None)
    assert local.read_bytes() == b"weights" and local.parent == cache_dir(tmp_path, "models", uri)
    with pytest.raises(TrainingFailure) as missing:
        fetch_model(ObjectStore(), f"s3://{name}/w/other.pt", tmp_path, lambda _: None)
    assert missing.value.reason is Reason.MODEL_NOT_FOUND


def test_artifacts_are_uploaded_and_a_run_is_restored_from_them(creds: S3Server, tmp_path: Path) -> None:
    name = bucket(creds)
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    for file, body in (("weights/best.pt", b"best"), ("weights/last.pt", b"last"), ("results.csv", b"epoch\n1\n"),
                       ("args.yaml", b"epochs: 3\n"), ("confusion_matrix.png", b"\x89PNG"),
                       ("final-val/confusion_matrix.png", b"\x89PNG final"), ("val_batch0_pred.jpg", b"\xff\xd8")):
        (run / file).parent.mkdir(parents=True, exist_ok=True)
        (run / file).write_bytes(body)
    data = tmp_path / "data.yaml"
    data.write_text("train: x\n")
    published: list[list[dict[str, Any]]] = []
    prefix = S3Uri(name, "runs/task-1")
    uploader = Uploader(ObjectStore(), prefix, published.append)
    manifest = uploader.finish(run, data)
    kinds = {a["name"]: a["kind"] for a in manifest}
    assert kinds == {"best.pt": "weights", "last.pt": "weights", "results.csv": "metrics", "args.yaml": "config",
                     "data.yaml": "config", "confusion_matrix.png": "plot", "val_batch0_pred.jpg": "plot"}
    assert published[-1] == manifest
    best = next(a for a in manifest if a["name"] == "best.pt")
    assert best == {"name": "best.pt", "kind": "weights", "uri": f"s3://{name}/runs/task-1/best.pt", "size": 4,
                    "sha256": sha256_of(run / "weights/best.pt")}
    stored = creds.client().get_object(Bucket=name, Key="runs/task-1/confusion_matrix.png")["Body"].read()
    assert stored == b"\x89PNG final"  # the final validation's, under the run's prefix
    # an export is stored under the same prefix, after the rest; a second upload of it replaces its entry
    (run / "weights/best.onnx").write_bytes(b"onnx")
    for _ in range(2):
        entry = uploader.upload("best.onnx", run / "weights/best.onnx")
    assert entry["kind"] == "export" and entry["uri"] == f"s3://{name}/runs/task-1/best.onnx"
    assert [a["name"] for a in published[-1]].count("best.onnx") == 1 and len(published[-1]) == len(manifest) + 1
    fresh = tmp_path / "elsewhere"  # a pod on another node, no PVC
    assert restore_run(ObjectStore(), prefix, fresh) is True
    assert (fresh / "weights/last.pt").read_bytes() == b"last" and (fresh / "results.csv").is_file()
    assert (fresh / "confusion_matrix.png").read_bytes() == b"\x89PNG final"  # a finished run's plots come back
    assert restore_run(ObjectStore(), prefix, fresh) is False  # it has its own checkpoint now


@pytest.mark.parametrize("case", ["missing bucket", "missing yaml", "wrong secret", "unreachable"])
def test_each_failure_has_its_reason_and_no_credentials(case: str, s3_server: S3Server, dataset3: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = bucket(s3_server)
    s3_server.client().upload_file(str(dataset3), name, f"d/{dataset3.name}")
    env = s3_server.env()
    uri = f"s3://{name}/d/{dataset3.name}"
    expected = Reason.DATASET_INVALID
    if case == "missing bucket":
        uri = f"s3://no-such-bucket-{secrets.token_hex(3)}/d/data.yaml"
    elif case == "missing yaml":
        uri = f"s3://{name}/d/nothing.yaml"
    elif case == "wrong secret":
        env["AWS_SECRET_ACCESS_KEY"] = "not-" + s3_server.secret_key
        expected = Reason.ACCESS_DENIED
    else:
        env["AWS_ENDPOINT_URL"] = closed_endpoint()
        expected = Reason.STORAGE_UNAVAILABLE
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(TrainingFailure) as failed:
        fetch_dataset(ObjectStore(retry_seconds=0.5, sleep=lambda _: None), uri, tmp_path, lambda _: None)
    assert failed.value.reason is expected, failed.value.message
    assert all(secret not in failed.value.message for secret in [*s3_server.secrets(), env["AWS_SECRET_ACCESS_KEY"]])
    if expected is Reason.DATASET_INVALID:
        assert uri in failed.value.message
