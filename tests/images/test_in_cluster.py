"""The three images together against an API server over HTTPS, with the credentials a kubelet mounts.

The operator and the API run as the chart's Deployments describe them (args, env, user); the trainer runs
as the Job the operator built describes it (command, env, volumes, user). Every container has a read-only
root filesystem and a writable /tmp only, and reaches the API server with the service-account token and CA
at /var/run/secrets/kubernetes.io/serviceaccount, like a pod. Jobs are found by their labels, never by name.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator import ADMIN_TOKEN
from pods import Engine, Runner, run_pod, running
from testbed import IMAGES, Cluster, chart_pod, free_port, readable
from waiting import eventually

pytestmark = pytest.mark.image
NAMESPACE = "team-a"
MANAGED = "app.kubernetes.io/managed-by=yolo-training-operator"


def answers(url: str, runner: Runner, **kwargs: Any) -> httpx.Response | None:
    """The response of ``url``, or None while nothing listens; fails at once if the container died."""
    assert runner.alive(), runner.logs()
    try:
        return httpx.get(url, timeout=5, **kwargs)
    except httpx.TransportError:
        return None


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with the value after ``option`` replaced (the option must be there)."""
    index = args.index(option)
    return [*args[:index + 1], value, *args[index + 2:]]


@pytest.fixture(scope="module")
def liveness(engine: Engine, cluster: Cluster) -> Iterator[str]:
    """The operator as the chart runs it; yields the URL of its liveness endpoint."""
    port = free_port()
    pod = chart_pod("operator", f"operator.livenessPort={port}", f"operator.metricsPort={free_port()}")
    with running(engine, pod, cluster=cluster.in_cluster, network="host") as operator:
        url = f"http://127.0.0.1:{port}/healthz"
        eventually(lambda: answers(url, operator), timeout=60, interval=0.5)
        yield url
        assert operator.alive(), operator.logs()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two persistent volume claims as host folders: a synthetic dataset and an empty output volume."""
    from yolo_trainer.synthetic import make_dataset

    datasets = readable(tmp_path_factory.mktemp("datasets"))
    data = make_dataset(datasets / "shapes", classes=2, train=32, val=8, imgsz=64)
    data.write_text(data.read_text().replace(f"path: {data.parent.absolute()}", "path: /data/shapes"))
    return {"datasets": datasets, "outputs": readable(tmp_path_factory.mktemp("outputs"))}


@pytest.fixture(scope="module")
def training(cluster: Cluster, liveness: str) -> dict[str, Any]:
    """A YoloTraining of 2 epochs on the dataset claim, writing to the output claim."""
    return cluster.create_training(NAMESPACE, "shapes", {
        "model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 2, "imgsz": 64, "gpus": 0,
        "hyperparameters": {"workers": 0},
        "storage": {"volumes": [{"name": "data", "claimName": "datasets", "mountPath": "/data", "readOnly": True},
                                {"name": "out", "claimName": "outputs", "mountPath": "/outputs"}],
                    "outputVolume": "out"}})


@pytest.fixture(scope="module")
def job(cluster: Cluster, training: dict[str, Any]) -> dict[str, Any]:
    """The Job the operator created for the training, found by its labels."""
    selector = f"{MANAGED},yolo-operator.io/task-id={training['metadata']['uid']}"
    jobs = eventually(lambda: cluster.jobs(NAMESPACE, selector), timeout=60, interval=0.5)
    assert len(jobs) == 1, jobs
    return dict(jobs[0])


@pytest.fixture(scope="module")
def trained(engine: Engine, cluster: Cluster, job: dict[str, Any],
            storage: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    """The Job's pod run to its end with the trainer image, as a kubelet on a node would run it."""
    return run_pod(engine, job["spec"]["template"]["spec"], claims=storage, cluster=cluster.in_cluster,
                   network="host", timeout=480)


@pytest.fixture(scope="module")
def api(engine: Engine, cluster: Cluster) -> Iterator[str]:
    """The API as the chart runs it (Kubernetes backend and auth); yields its base URL once it is ready."""
    port = free_port()
    pod = chart_pod("api")
    container = pod["containers"][0]
    # the host's network: its own loopback address and a free port instead of 0.0.0.0:8000
    container["args"] = with_option(with_option(container["args"], "--host", "127.0.0.1"), "--port", str(port))
    with running(engine, pod, cluster=cluster.in_cluster, network="host") as runner:
        url = f"http://127.0.0.1:{port}"

        def ready() -> httpx.Response | None:
            response = answers(url + "/readyz", runner)
            return response if response is not None and response.status_code == 200 else None

        assert eventually(ready, timeout=60, interval=0.5).json() == {"status": "ready"}
        yield url
        assert runner.alive(), runner.logs()


def test_operator_answers_its_liveness_probe(liveness: str) -> None:
    response = httpx.get(liveness, timeout=5)
    assert response.status_code == 200, response.text


def test_operator_creates_the_job_of_a_training(job: dict[str, Any], training: dict[str, Any]) -> None:
    [owner] = job["metadata"]["ownerReferences"]
    assert owner["uid"] == training["metadata"]["uid"] and owner["kind"] == "YoloTraining"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGES["trainer"]


def test_trainer_runs_the_job_and_writes_best_pt(trained: subprocess.CompletedProcess[str],
                                                 storage: dict[str, Path], training: dict[str, Any]) -> None:
    assert trained.returncode == 0, trained.stdout[-6000:]
    best = storage["outputs"] / training["metadata"]["uid"] / "weights" / "best.pt"
    assert best.is_file(), sorted(str(p) for p in storage["outputs"].rglob("*"))


def test_the_training_status_ends_in_success(trained: subprocess.CompletedProcess[str], cluster: Cluster) -> None:
    status = cluster.status(NAMESPACE, "shapes")
    assert status.get("stage") == "completed", (status, trained.stdout[-3000:])
    assert set(status["finalMetrics"]) == {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
    assert status["currentEpoch"] == 2 and status["progress"] == 100


def test_api_answers_the_task_status_of_the_training(api: str, trained: subprocess.CompletedProcess[str],
                                                     training: dict[str, Any]) -> None:
    url = f"{api}/task_status/{training['metadata']['uid']}"
    assert httpx.get(url, timeout=10).status_code == 401  # the API asks the cluster who the caller is

    def envelope() -> dict[str, Any]:
        response = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    data = eventually(lambda: (found := envelope())["status"] == "success" and found, timeout=30)
    assert set(data["result"]["final_metrics"]) == {"mAP50", "mAP50-95", "precision", "recall", "f1_score"}
