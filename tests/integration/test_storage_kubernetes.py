"""Object storage on Kubernetes, end to end: real operator, real API (Kubernetes backend), real trainers run by
the stand-in node, a real S3 server (SeaweedFS), credentials in Secrets of the emulated API server.

The trainer pods get their credentials the way a kubelet gives them (``secretKeyRef``, resolved by the
stand-in node from the emulator's Secrets; the test process's own ``AWS_*`` never reach a pod). The API
presigns downloads with its own credentials (on a cluster: a Secret named in the chart).
"""

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kopf.testing import KopfRunner
from kubernetes import client, config

from apiserver import ApiServer
from emulator import ADMIN_TOKEN
from kubelet import LocalKubelet
from s3server import S3Server, closed_endpoint
from trainings import create
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.backends.kubernetes import KubernetesBackend
from yolo_api.client_download import download_artifacts
from yolo_api.settings import ApiSettings

pytestmark = pytest.mark.slow
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]
NS = "team-s"
ARTIFACTS = {"best.pt", "last.pt", "results.csv", "args.yaml", "data.yaml"}


def put_secret(kube: client.ApiClient, name: str, values: dict[str, str]) -> None:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    client.CoreV1Api(kube).create_namespaced_secret(NS, {"metadata": {"name": name}, "data": data})


@pytest.fixture
def stack(api_server: ApiServer, s3_server: S3Server, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.3")
    monkeypatch.setenv("YOLO_TRAINER_STORAGE_RETRY_SECONDS", "1")  # the stand-in node's pods inherit it
    monkeypatch.setenv("YOLO_OPERATOR_OBJECT_STORAGE_SECRET", "s3-default")  # the chart-wide default
    for key, value in s3_server.env().items():  # the API's own credentials, for presigned URLs
        monkeypatch.setenv(key, value)
    with config.new_client_from_config(str(kubeconfig)) as kube, KopfRunner(OPERATOR) as operator, \
            LocalKubelet(kube, kubeconfig, tmp_path) as kubelet:
        put_secret(kube, "s3-default", s3_server.env())
        settings = ApiSettings(backend="kubernetes", default_namespace=NS)
        with TestClient(create_app(settings, backend=KubernetesBackend(settings, kube)),
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
            eventually(lambda: api.get("/readyz").status_code == 200)
            yield {"api": api, "kube": kube, "kubelet": kubelet, "server": api_server, "workdir": tmp_path}
    assert operator.exit_code == 0, operator.output


def finish(api: TestClient, task_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (envelope := api.get(f"/task_status/{task_id}").json())["data"]["status"] not in ("success", "failure"):
        assert time.monotonic() < deadline, envelope
        time.sleep(0.3)
    return dict(envelope)


def everything_said(stack: dict[str, Any], envelopes: list[dict[str, Any]]) -> str:
    """Statuses, Events, Jobs, envelopes and every trainer pod's log, as one text to grep."""
    emulator = stack["server"].emulator
    objects = [*emulator.find("yolotrainings", NS), *emulator.find("events", NS), *emulator.find("jobs", NS),
               *emulator.find("pods", NS)]
    logs = [path.read_text(errors="replace") for path in Path(stack["workdir"]).glob("*.log")]
    return json.dumps([objects, envelopes]) + "".join(logs)


def test_s3_dataset_and_output_download_and_fine_tune_by_name(stack: dict[str, Any], s3_server: S3Server,
                                                              dataset3: Path, tmp_path: Path) -> None:
    api: TestClient = stack["api"]
    data_bucket = s3_server.make_bucket(f"kdata-{secrets.token_hex(4)}")
    s3_server.upload_tree(dataset3.parent, data_bucket, "shapes")
    output = f"s3://{s3_server.make_bucket(f'kout-{secrets.token_hex(4)}')}/runs"
    body = {"model": "yolov8n.yaml", "data": f"s3://{data_bucket}/shapes/{dataset3.name}", "epochs": 2, "imgsz": 64,
            "batch": 16, "gpus": 0, "hyperparameters": {"workers": 0}, "name": "base", "output": output}
    first = api.post("/train", json=body).json()["data"]["task_id"]
    done = finish(api, first)
    assert done["data"]["status"] == "success", done
    artifacts = {a["name"]: a for a in done["data"]["result"]["artifacts"]}
    assert {name for name, a in artifacts.items() if a["kind"] != "plot"} == ARTIFACTS
    assert artifacts["best.pt"]["uri"] == f"{output}/{first}/best.pt"
    [(path, sha256)] = download_artifacts(api, first, "best.pt", tmp_path / "got")  # 307, presigned, verified
    assert sha256 == artifacts["best.pt"]["sha256"] and path.stat().st_size == artifacts["best.pt"]["size"]
    redirect = api.get(f"/tasks/{first}/artifacts/results.csv", follow_redirects=False)
    assert redirect.status_code == 307 and b"epoch" in httpx.get(redirect.headers["location"]).content
    reads = dict(stack["server"].emulator.reads_of)
    metrics = api.get(f"/tasks/{first}/metrics").json()["data"]  # every epoch, from results.csv in the bucket
    assert metrics["complete"] is True and [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert stack["server"].emulator.reads_of.get("yolotrainings") == reads.get("yolotrainings")  # not asked

    name = api.get(f"/tasks/{first}").json()["data"]["name"]
    refused = api.post("/train", json={**body, "model": "training/no-such-training", "name": "tuned"})
    assert refused.status_code == 422 and "no such training" in refused.text
    second = api.post("/train", json={**body, "model": f"training/{name}", "epochs": 1, "name": "tuned",
                                      "output": None}).json()["data"]["task_id"]
    tuned = finish(api, second)
    assert tuned["data"]["status"] == "success", tuned
    lineage = tuned["data"]["result"]["lineage"]
    assert lineage == {"source_task": first, "source_name": name, "model": artifacts["best.pt"]["uri"],
                       "sha256": artifacts["best.pt"]["sha256"]}
    [job] = [j for j in stack["server"].emulator.find("jobs", NS) if j["metadata"]["labels"]
             ["yolo-operator.io/task-id"] == second]
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-default", "key": "AWS_SECRET_ACCESS_KEY", "optional": False}
    assert env["AWS_ENDPOINT_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    said = everything_said(stack, [done, tuned])
    assert all(secret not in said for secret in s3_server.secrets())


def test_storage_failures_and_unusable_sources_say_why_without_credentials(stack: dict[str, Any],
                                                                           s3_server: S3Server) -> None:
    kube = stack["kube"]
    data_bucket = s3_server.make_bucket(f"kfail-{secrets.token_hex(4)}")
    s3_server.client().put_object(Bucket=data_bucket, Key="d/data.yaml", Body=b"train: images\nval: images\n")
    wrong = "wrong-" + secrets.token_hex(12)
    put_secret(kube, "s3-wrong", s3_server.env(AWS_SECRET_ACCESS_KEY=wrong))
    put_secret(kube, "s3-down", s3_server.env(AWS_ENDPOINT_URL=closed_endpoint()))
    cases = {"missing-bucket": ("s3://no-such-bucket-here/d/data.yaml", None, "DatasetInvalid"),
             "wrong-credentials": (f"s3://{data_bucket}/d/data.yaml", "s3-wrong", "AccessDenied"),
             "unreachable": (f"s3://{data_bucket}/d/data.yaml", "s3-down", "StorageUnavailable")}
    uids = {}
    for name, (data, secret, _) in cases.items():
        extra = {"objectStorage": {"secretRef": {"name": secret}}} if secret else {}
        uids[name] = create(kube, NS, name, data=data, gpus=0, imgsz=64, backoffLimit=0, **extra)["metadata"]["uid"]
    unknown = create(kube, NS, "from-nowhere", model="training/never-was", data="/d/data.yaml", gpus=0)
    no_secret = create(kube, NS, "no-secret", data=f"s3://{data_bucket}/d/data.yaml", gpus=0,
                       objectStorage={"secretRef": {"name": "never-created"}})
    emulator = stack["server"].emulator

    def status(uid: str) -> dict[str, Any]:
        return next(t for t in emulator.find("yolotrainings", NS) if t["metadata"]["uid"] == uid).get("status") or {}

    waiting = eventually(lambda: status(no_secret["metadata"]["uid"]).get("reason") == "CreateContainerConfigError"
                         and status(no_secret["metadata"]["uid"]), timeout=60)
    assert waiting["phase"] == "Pending" and "never-created" in waiting["message"]  # said, not stuck in silence
    eventually(lambda: status(unknown["metadata"]["uid"]).get("phase") == "Failed", timeout=60)
    failed = status(unknown["metadata"]["uid"])
    assert failed["reason"] == "ModelNotFound" and "training/never-was: no such training" in failed["message"]
    api: TestClient = stack["api"]
    envelopes = [finish(api, uid, timeout=180) for uid in uids.values()]
    for (name, (_, _, reason)), envelope in zip(cases.items(), envelopes, strict=True):
        assert envelope["data"]["status"] == "failure" and envelope["data"]["reason"] == reason, (name, envelope)
        assert status(uids[name])["reason"] == reason
    from_failed = create(kube, NS, "from-failed", model=f"task/{uids['missing-bucket']}", data="/d/data.yaml", gpus=0)
    eventually(lambda: status(from_failed["metadata"]["uid"]).get("phase") == "Failed", timeout=60)
    assert "that training failed (DatasetInvalid" in status(from_failed["metadata"]["uid"])["message"]
    said = everything_said(stack, envelopes)
    for secret in [*s3_server.secrets(), wrong]:
        assert secret not in said
    events = {e["reason"] for e in emulator.find("events", NS)}
    assert {"DatasetInvalid", "AccessDenied", "StorageUnavailable", "ModelNotFound"} <= events
