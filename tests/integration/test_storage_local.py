"""Object storage in local mode, end to end: a real SeaweedFS, the local API, real trainer subprocesses.

Credentials come from the API's own environment (the trainers inherit it). The dataset lies in S3, the
artifacts go to S3, ``yoloctl download`` fetches them through the API (307 to a presigned URL) and checks
their sha256, a second training fine-tunes the first one's best.pt (``task/<id>``), and a run killed after
uploading ``last.pt`` resumes from it on a machine without its run directory. Each failure (a missing
bucket, wrong credentials, an unreachable endpoint) ends with its reason, and no status, envelope, log
line or listing carries a credential.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN
from plotting import plots_drawn  # noqa: F401 - this module's trainings draw plots
from s3server import S3Server, closed_endpoint
from serving import serve
from waiting import eventually
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings
from yolo_trainer.storage import sha256_of

pytestmark = pytest.mark.slow
YOLOCTL = str(Path(sys.executable).parent / "yoloctl")
ARTIFACTS = {"best.pt", "last.pt", "results.csv", "args.yaml", "data.yaml"}


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("YOLO_TRAINER_REPORT_INTERVAL", "0.2")
    monkeypatch.setenv("YOLO_TRAINER_STORAGE_RETRY_SECONDS", "1")
    return s3_server


@pytest.fixture
def api(tmp_path: Path, s3_env: S3Server) -> Iterator[httpx.Client]:
    """The local API over real HTTP (yoloctl runs against it as a user would)."""
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", poll_interval=0.2, allowed_roots=[tmp_path],
                           auth_token=TOKEN)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client


def body(data: str, **extra: Any) -> dict[str, Any]:
    return {"model": "yolov8n.yaml", "data": data, "epochs": 2, "imgsz": 64, "batch": 16, "gpus": 0,
            "hyperparameters": {"workers": 0}, **extra}


def finish(api: httpx.Client | TestClient, task_id: str, timeout: float = 240) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1]["data"]["status"] not in ("success", "failure"):
        assert time.monotonic() < deadline, seen[-1:]
        seen.append(api.get(f"/task_status/{task_id}").json())
        time.sleep(0.2)
    return seen


def dataset_in_s3(server: S3Server, dataset: Path) -> tuple[str, str]:
    bucket = server.make_bucket(f"data-{secrets.token_hex(4)}")
    server.upload_tree(dataset.parent, bucket, "shapes")
    return bucket, f"s3://{bucket}/shapes/{dataset.name}"


def no_secrets(server: S3Server, *texts: str) -> None:
    for text in texts:
        for secret in server.secrets():
            assert secret not in text


def test_dataset_and_artifacts_in_s3_download_and_fine_tune(api: httpx.Client, s3_env: S3Server, dataset3: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = dataset_in_s3(s3_env, dataset3)
    output = f"s3://{s3_env.make_bucket(f'out-{secrets.token_hex(4)}')}/runs"
    first = api.post("/train", json=body(data, output=output)).json()["data"]["task_id"]
    seen = finish(api, first)
    assert seen[-1]["data"]["status"] == "success", seen[-1]
    stages = [e["data"]["result"]["stage"] for e in seen if e["data"]["status"] == "progress"]
    assert "downloading" in stages or "initializing" in stages
    result = seen[-1]["data"]["result"]
    artifacts = {a["name"]: a for a in result["artifacts"]}
    assert {name for name, a in artifacts.items() if a["kind"] != "plot"} == ARTIFACTS
    assert artifacts["confusion_matrix.png"]["uri"] == f"{output}/{first}/confusion_matrix.png"  # plots too
    assert artifacts["best.pt"]["uri"] == f"{output}/{first}/best.pt"
    assert result["weights_path"].endswith("weights/best.pt")  # the spec's fields stay as they were
    local_best = Path(result["weights_path"])
    assert artifacts["best.pt"]["sha256"] == sha256_of(local_best)

    listed = api.get(f"/tasks/{first}/artifacts").json()["data"]["artifacts"]
    assert {item["name"] for item in listed if item["kind"] != "plot"} == ARTIFACTS and all(item["url"] for item in listed)
    redirect = api.get(f"/tasks/{first}/artifacts/best.pt")
    assert redirect.status_code == 307 and redirect.headers["location"].startswith(s3_env.endpoint)
    assert httpx.get(redirect.headers["location"]).content == local_best.read_bytes()

    monkeypatch.setenv("YOLO_API_TOKEN", TOKEN)  # yoloctl, as a user runs it
    url = str(api.base_url)
    done = subprocess.run([YOLOCTL, "download", first[:8], "-o",
                           str(tmp_path / "got"), "--url", url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = {p.name for p in (tmp_path / "got").iterdir()}
    assert got == set(artifacts) and got >= ARTIFACTS and done.stdout.count("verified") == len(artifacts)
    unknown = subprocess.run([YOLOCTL, "download", first, "nothing.pt",
                              "--url", url], capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 4 and "no artifact 'nothing.pt'" in unknown.stderr

    second = api.post("/train", json=body(data, model=f"task/{first}", epochs=1)).json()["data"]["task_id"]
    final = finish(api, second)[-1]["data"]
    assert final["status"] == "success", final
    lineage = final["result"]["lineage"]
    assert (lineage["source_task"], lineage["model"], lineage["sha256"]) == (
        first, artifacts["best.pt"]["uri"], artifacts["best.pt"]["sha256"])
    state = tmp_path / "state"
    logs = "".join(p.read_text(errors="replace") for p in (state / "logs").glob("*.log"))
    statuses = json.dumps([api.get(f"/tasks/{t}").json() for t in (first, second)])
    no_secrets(s3_env, logs, statuses, json.dumps(seen))


def test_a_local_run_on_an_s3_dataset_serves_its_data_yaml(api: httpx.Client, s3_env: S3Server,
                                                           dataset3: Path) -> None:
    """The bug: with the dataset in object storage and the run's files local, data.yaml (fetched into the
    runs' cache) answered 404, so ``yoloctl download`` fetched 4 of 5 files and exited 4."""
    _, data = dataset_in_s3(s3_env, dataset3)
    task = api.post("/train", json=body(data, epochs=1)).json()["data"]["task_id"]
    assert finish(api, task)[-1]["data"]["status"] == "success"
    served = api.get(f"/tasks/{task}/artifacts/data.yaml")
    assert served.status_code == 200 and b"names" in served.content


def test_an_unusable_source_is_refused_at_submit(api: httpx.Client, s3_env: S3Server) -> None:
    data = "s3://whatever-bucket/d/data.yaml"
    unknown = api.post("/train", json=body(data, model="task/0b0e4f2a-0000-4000-8000-000000000000"))
    assert unknown.status_code == 422 and "no such training" in str(unknown.json()["data"]["errors"])
    by_name = api.post("/train", json=body(data, model="training/shapes"))
    assert by_name.status_code == 422 and "use task/<task id>" in str(by_name.json()["data"]["errors"])
    failing = api.post("/train", json=body(data)).json()["data"]["task_id"]  # its dataset bucket does not exist
    unfinished = api.post("/train", json=body(data, model=f"task/{failing}"))
    assert unfinished.status_code == 422
    assert "has not finished" in str(unfinished.json()["data"]["errors"]) or \
        "failed" in str(unfinished.json()["data"]["errors"])
    assert finish(api, failing, timeout=120)[-1]["data"]["reason"] == "DatasetInvalid"
    failed = api.post("/train", json=body(data, model=f"task/{failing}"))
    assert failed.status_code == 422 and "that training failed (DatasetInvalid" in str(failed.json()["data"]["errors"])


@pytest.mark.parametrize("case", ["missing bucket", "wrong credentials", "unreachable endpoint"])
def test_storage_failures_have_their_reason_and_leak_no_credentials(
        case: str, s3_server: S3Server, dataset3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = dataset_in_s3(s3_server, dataset3) if case != "missing bucket" else ("", "s3://no-such-bucket/d/x.yaml")
    env = s3_server.env()
    if case == "wrong credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "wrong-" + secrets.token_hex(8)
    if case == "unreachable endpoint":
        env["AWS_ENDPOINT_URL"] = closed_endpoint()
    for key, value in {**env, "YOLO_TRAINER_STORAGE_RETRY_SECONDS": "1"}.items():
        monkeypatch.setenv(key, value)
    expected = {"missing bucket": "DatasetInvalid", "wrong credentials": "AccessDenied",
                "unreachable endpoint": "StorageUnavailable"}[case]
    settings = ApiSettings(backend="local", state_dir=tmp_path / "state", poll_interval=0.2, auth_token=TOKEN)
    with TestClient(create_app(settings), headers=AUTH) as api:
        task_id = api.post("/train", json=body(data)).json()["data"]["task_id"]
        seen = finish(api, task_id, timeout=120)
        final = seen[-1]["data"]
        assert final["reason"] == expected, final
        listing = api.get("/tasks").text
        log = api.get(f"/tasks/{task_id}/logs").text
    no_secrets(s3_server, json.dumps(seen), listing, log)
    assert env["AWS_SECRET_ACCESS_KEY"] not in json.dumps(seen) + listing + log
    assert "Traceback" not in log


@pytest.mark.parametrize("follow", ["false", "true"], ids=["callbacks", "results-csv-as-in-ddp"])
def test_a_run_resumes_from_last_pt_in_s3_without_its_run_directory(s3_env: S3Server, dataset3: Path,
                                                                    tmp_path: Path, follow: str) -> None:
    """A pod that lands on another node has no run directory: the trainer restores last.pt from the output.

    ``results-csv-as-in-ddp`` runs the multi-GPU path on one CPU: no callback of ours runs in ultralytics,
    the results.csv follower reports and takes the checkpoints (they used to be uploaded only at the end)."""
    output = f"s3://{s3_env.make_bucket(f'resume-{secrets.token_hex(4)}')}/runs"
    spec = json.dumps({"model": "yolov8n.yaml", "data": str(dataset3), "epochs": 4, "imgsz": 64, "batch": 16,
                       "gpus": 0, "hyperparameters": {"workers": 0}, "output": output})
    env = {**os.environ, "YOLO_TRAINER_SPEC": spec, "YOLO_TRAINER_SINK": "local", "YOLO_TRAINER_TASK_ID": "resume-1",
           "YOLO_TRAINER_STATE_DB": str(tmp_path / "state.db"), "YOLO_TRAINER_OUTPUT_DIR": str(tmp_path / "out"),
           "YOLO_TRAINER_REPORT_INTERVAL": "0.1", "YOLO_TRAINER_FOLLOW_RESULTS_CSV": follow}
    with (tmp_path / "first.log").open("wb") as log:
        trainer = subprocess.Popen([sys.executable, "-m", "yolo_trainer"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = s3_env.client()
        bucket = output.split("/")[2]
        eventually(lambda: client.list_objects_v2(Bucket=bucket, Prefix="runs/resume-1/last.pt").get("KeyCount"),
                   timeout=180, interval=0.2)
    finally:
        os.killpg(trainer.pid, signal.SIGKILL)
        trainer.wait()
    from yolo_trainer.training import checkpoint_epoch

    client.download_file(bucket, "runs/resume-1/last.pt", str(tmp_path / "uploaded-last.pt"))
    assert (checkpoint_epoch(tmp_path / "uploaded-last.pt") or 0) >= 1  # taken during training, not at its end
    # best.pt came with last.pt (a resume writes a new one only if an epoch beats the old best), and the history
    uploaded = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="runs/resume-1/")["Contents"]}
    assert {f"runs/resume-1/{name}" for name in ("best.pt", "last.pt", "results.csv", "args.yaml")} <= uploaded
    shutil.rmtree(tmp_path / "out" / "resume-1")  # the new node has none of it
    done = subprocess.run([sys.executable, "-m", "yolo_trainer"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    from yolo_io import local_store

    status = local_store.read_status(local_store.connect(tmp_path / "state.db"), "resume-1")
    assert status is not None and status["stage"] == "completed" and status["resumedFromEpoch"] >= 1, status
    assert {a["name"] for a in status["artifacts"] if a.get("kind") != "plot"} == ARTIFACTS
    assert not (tmp_path / "out" / "resume-1" / ".upload").exists()  # checkpoint snapshots are cleaned up
