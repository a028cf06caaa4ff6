"""Object storage in the contract and the pure parts around it: URIs, spec validation, source resolution
(object storage or a shared PVC), the envelope's additions, the composed story of storage failures, the
Job's credentials by reference, and how boto3's errors are classified without their text."""

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from pydantic import ValidationError

from yolo_crd.envelope import task_envelope
from yolo_crd.locations import S3Uri, artifact_prefix, parse_s3, source_ref
from yolo_crd.outcome import failure
from yolo_crd.sources import SourceError, resolve
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import TrainingStatus
from yolo_operator.builders import build_training_job
from yolo_operator.settings import OperatorSettings
from yolo_trainer.errors import classify as classify_failure
from yolo_trainer.storage import classify

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
SHA = "ab" * 32


def spec(**fields: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec.model_validate({"model": "yolov8n.yaml", "data": "/d/data.yaml", **fields})


def test_uris_parse_and_compose() -> None:
    assert parse_s3("s3://models/runs/a/best.pt") == S3Uri("models", "runs/a/best.pt")
    assert str(artifact_prefix("s3://models/runs/", "t1").child("best.pt")) == "s3://models/runs/t1/best.pt"
    assert str(artifact_prefix("s3://models", "t1")) == "s3://models/t1"
    assert parse_s3("s3://b-1/p/data.yaml").parent == S3Uri("b-1", "p")
    for bad in ("s3://B/x", "s3://ab/x", "s3://bucket", "s3://bucket/a/../b", "http://x/y"):
        with pytest.raises(ValueError, match=r"s3|bucket|key|object"):
            parse_s3(bad)
    assert source_ref("task/4f1c-77") is not None and source_ref("training/base.v2") is not None
    assert source_ref("yolov8n.pt") is None


@pytest.mark.parametrize(("fields", "problem"), [
    ({"model": "s3://models/x.yaml"}, "must be weights"),
    ({"model": "task/"}, "expected task/<task id>"),
    ({"model": "training/Not_A_Name"}, "expected training/"),
    ({"data": "s3://data/x.json"}, "dataset YAML"),
    ({"data": "s3://Bad_Bucket/x.yaml"}, "bucket"),
    ({"output": "/local/path"}, "pattern"),
    ({"output": "s3://ab"}, "pattern"),
])
def test_the_spec_refuses_malformed_locations(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        spec(**fields)


def test_the_spec_accepts_object_storage_everywhere() -> None:
    accepted = spec(model="s3://models/base/best.pt", data="s3://data/shapes/data.yaml", output="s3://models/runs",
                    objectStorage={"secretRef": {"name": "s3"}})
    assert accepted.uses_object_storage() and accepted.wire()["objectStorage"] == {"secretRef": {"name": "s3"}}
    assert not spec().uses_object_storage() and spec(model="task/abc").model == "task/abc"


def succeeded(**extra: Any) -> TrainingStatus:
    return TrainingStatus.model_validate({"phase": "Succeeded", "stage": "completed", "finalMetrics": FINAL, **extra})


def test_a_source_gives_its_best_pt_from_object_storage() -> None:
    status = succeeded(artifacts=[{"name": "best.pt", "uri": "s3://m/r/u1/best.pt", "size": 5, "sha256": SHA}],
                       weightsPath="/outputs/u1/weights/best.pt")
    found = resolve(source_ref("training/base"), "u1", "base", {}, status, spec(), local=False)  # type: ignore[arg-type]
    assert (found.task, found.name, found.weights, found.sha256) == ("u1", "base", "s3://m/r/u1/best.pt", SHA)


def test_a_source_on_a_shared_claim_is_found_where_the_new_training_mounts_it() -> None:
    source_spec = {"storage": {"volumes": [{"name": "w", "claimName": "runs", "mountPath": "/work", "subPath": "a"}],
                               "outputVolume": "w"}}
    status = succeeded(weightsPath="/work/u1/weights/best.pt")
    target = spec(storage={"volumes": [{"name": "all", "claimName": "runs", "mountPath": "/mnt/runs"}]})
    found = resolve(source_ref("task/u1"), "u1", "base", source_spec, status, target, local=False)  # type: ignore[arg-type]
    assert found.weights == "/mnt/runs/a/u1/weights/best.pt"
    with pytest.raises(SourceError, match="PersistentVolumeClaim 'runs', which this training does not mount"):
        resolve(source_ref("task/u1"), "u1", "base", source_spec, status, spec(), local=False)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="scratch volume"):
        resolve(source_ref("task/u1"), "u1", "base", {}, succeeded(weightsPath="/outputs/u1/weights/best.pt"),
                target, local=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(("uid", "status", "words"), [
    (None, None, "no such training"),
    ("u1", TrainingStatus.model_validate({"phase": "Running", "stage": "training"}), "has not finished (progress)"),
    ("u1", TrainingStatus.model_validate({"phase": "Failed", "reason": "DatasetInvalid", "message": "m"}),
     "failed (DatasetInvalid: m)"),
])
def test_unknown_unfinished_and_failed_sources_are_refused(uid: str | None, status: TrainingStatus | None,
                                                           words: str) -> None:
    with pytest.raises(SourceError, match=re.escape(words)):
        resolve(source_ref("task/u1"), uid, None, {}, status, spec(), local=False)  # type: ignore[arg-type]


def test_the_envelope_adds_artifacts_lineage_and_download_progress() -> None:
    artifact = {"name": "best.pt", "uri": "s3://m/r/t/best.pt", "size": 5, "sha256": SHA}
    _, done = task_envelope("t", succeeded(artifacts=[artifact], weightsPath="/o/t/weights/best.pt", projectPath="/o/t",
                                           lineage={"sourceTask": "s", "model": "s3://m/r/s/best.pt", "sha256": SHA}))
    result = done["data"]["result"]
    assert result["weights_path"] == "/o/t/weights/best.pt" and result["artifacts"] == [artifact]
    assert result["lineage"] == {"source_task": "s", "model": "s3://m/r/s/best.pt", "sha256": SHA}
    _, fetching = task_envelope("t", TrainingStatus.model_validate({
        "phase": "Running", "stage": "downloading", "download": {"uri": "s3://d/x/data.yaml", "doneBytes": 5,
                                                                 "totalBytes": 10, "files": 1, "totalFiles": 2}}))
    assert fetching["data"]["result"]["stage"] == "downloading"
    assert fetching["data"]["result"]["download"]["done_bytes"] == 5


@pytest.mark.parametrize("reason", ["StorageUnavailable", "AccessDenied", "OutputInvalid"])
def test_a_storage_failure_outlives_the_job_controllers_verdict(reason: str) -> None:
    status = TrainingStatus.model_validate({"phase": "Failed", "reason": "BackoffLimitExceeded", "stage": "failed",
                                            "trainingFailure": {"reason": reason, "message": "why"}})
    assert failure(status) == (reason, "why")
    assert task_envelope("t", status)[1]["data"]["reason"] == reason


def job_env(training: YoloTrainingSpec, settings: OperatorSettings) -> dict[str, Any]:
    job = build_training_job({"name": "t", "namespace": "ns", "uid": "0123456789"}, training, settings)
    return {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_job_gets_credentials_by_reference_only_when_it_uses_object_storage() -> None:
    settings = OperatorSettings(object_storage_secret="s3-default", checkpoint_upload_epochs=5)
    env = job_env(spec(data="s3://data/x/data.yaml", output="s3://models/r"), settings)
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3-default", "key": "AWS_ACCESS_KEY_ID",
                                                                      "optional": False}}
    assert env["AWS_REGION"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["YOLO_TRAINER_CHECKPOINT_UPLOAD_EPOCHS"]["value"] == "5"
    named = job_env(spec(model="s3://models/w.pt", objectStorage={"secretRef": {"name": "mine"}}), settings)
    assert named["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    assert not {k for k in job_env(spec(), settings) if k.startswith("AWS_")}  # no s3://: no credentials
    assert not {k for k in job_env(spec(output="s3://models/r"), OperatorSettings()) if k.startswith("AWS_")}  # no Secret


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "secret-ish text"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize(("exc", "kind", "reason"), [
    (client_error("SignatureDoesNotMatch", 403), "denied", "AccessDenied"),
    (client_error("InvalidAccessKeyId", 403), "denied", "AccessDenied"),
    (client_error("403", 403), "denied", "AccessDenied"),
    (NoCredentialsError(), "denied", "AccessDenied"),
    (client_error("NoSuchBucket", 404), "missing", "TrainingError"),
    (client_error("SlowDown", 503), "unavailable", "StorageUnavailable"),
    (EndpointConnectionError(endpoint_url="http://user:pw@s3.local:9000"), "unavailable", "StorageUnavailable"),
])
def test_boto_errors_are_classified_in_our_own_words(exc: Exception, kind: str, reason: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://user:pw@s3.local:9000")
    error = classify(exc, "reading s3://b/k")
    assert error.kind == kind and error.message.startswith("reading s3://b/k")
    assert "pw@" not in error.message
    if kind == "denied":  # a refusal of credentials never echoes the server's text
        assert "secret-ish" not in error.message
    assert classify_failure(error, batch=16, imgsz=64).reason.value == reason


def test_the_api_and_the_trainer_share_one_storage_error_and_one_client_factory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import yolo_api.storage
    import yolo_trainer.storage
    from yolo_io import s3

    assert yolo_api.storage.StorageError is yolo_trainer.storage.StorageError is s3.StorageError
    assert yolo_trainer.storage.make_client is s3.make_client and yolo_trainer.storage.classify is s3.classify
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://s3.local:8333")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-id-1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-5678")
    assert yolo_trainer.storage.make_client().meta.endpoint_url == "http://s3.local:8333"
    signed = yolo_api.storage.make_client("https://public.example.com")
    assert signed.meta.endpoint_url == "https://public.example.com"
    assert s3.StorageError("missing", "reading s3://b/k: secret-5678").message == "reading s3://b/k: ***"


def test_the_servers_reason_is_kept_through_boto3s_wrapping() -> None:
    """The bug: an upload that SeaweedFS refused read ``writing s3://b/best.pt: S3UploadFailedError``."""
    from boto3.exceptions import S3UploadFailedError

    refused = ClientError({"Error": {"Code": "InternalError", "Message": "No writable volumes"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject")
    try:
        try:
            raise refused
        except ClientError as inner:
            raise S3UploadFailedError(f"Failed to upload best.pt to b/best.pt: {inner}") from inner
    except S3UploadFailedError as wrapped:
        error = classify(wrapped, "writing s3://b/best.pt")
    assert error.kind == "unavailable" and "No writable volumes" in error.message
    assert error.message.startswith("writing s3://b/best.pt")
    slow = classify(client_error("SlowDown", 503), "reading s3://b/k")
    assert "secret-ish text" in slow.message  # a server's reason is told, but never for refused credentials
    assert "secret-ish" not in classify(client_error("SignatureDoesNotMatch", 403), "reading s3://b/k").message
