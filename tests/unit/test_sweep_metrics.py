"""Per-sweep series (issue 21): each sweep's trials by state and its best objective, in the operator (set by the
sweep controller's step) and in the API (read from its sweep records at scrape time), kept while the sweep runs
and for the retention period after it ends, as a training's are, and valid for ``promtool check metrics``."""

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.backends.sweeps import SweepRecord
from yolo_api.settings import ApiSettings
from yolo_crd.sweep_status import YoloSweepStatus
from yolo_operator import metrics
from yolo_operator.sweeps import SweepController

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SPEC: dict[str, Any] = {"template": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 2, "gpus": 0},
                        "objective": {"metric": "mAP50-95"}, "algorithm": "grid", "maxTrials": 3, "parallelism": 2,
                        "parameters": {"lr0": {"values": [0.01, 0.02, 0.03]}}}


def parse(exposition: str) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def scrape_operator(table: metrics.SweepTable) -> Samples:
    registry = CollectorRegistry()
    registry.register(table)
    return parse(generate_latest(registry).decode())


def get(samples: Samples, series: str, **labels: str) -> float | None:
    return samples.get((series, tuple(sorted(labels.items()))))


def ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class FakeGateway:
    """The sweep controller's calls, on dicts: one sweep, its trials, and the status patches it receives."""

    def __init__(self, sweep: dict[str, Any] | None) -> None:
        self.sweep = sweep
        self.trials: list[dict[str, Any]] = []

    def get_sweep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.sweep

    def list_trials(self, namespace: str, sweep: str, uid: str) -> list[dict[str, Any]]:
        return self.trials

    def create_trial(self, body: dict[str, Any]) -> bool:
        self.trials.append({**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.trials)}"}})
        return True

    def stop_trial(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...

    def patch_sweep_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        assert self.sweep is not None
        status = {**(self.sweep.get("status") or {}), **patch}
        self.sweep["status"] = {key: value for key, value in status.items() if value is not None}


def finish(trial: dict[str, Any], value: float) -> None:
    trial["status"] = {"stage": "completed", "phase": "Succeeded", "currentEpoch": 2,
                       "metrics": {"epoch": 2, "mAP50-95": value},
                       "finalMetrics": {"mAP50": value, "mAP50-95": value, "precision": 0.5, "recall": 0.5,
                                        "f1_score": 0.5}}


@pytest.fixture
def table() -> Iterator[metrics.SweepTable]:
    metrics.SWEEPS.clear()
    yield metrics.SWEEPS
    metrics.SWEEPS.clear()


def test_the_controller_step_sets_trials_by_state_and_the_best_objective(table: metrics.SweepTable) -> None:
    sweep = {"metadata": {"name": "grid", "namespace": "team-a", "uid": "u-1", "generation": 1}, "spec": SPEC}
    gateway = FakeGateway(sweep)
    controller = SweepController(gateway)  # type: ignore[arg-type]
    controller.step("team-a", "grid")
    first = scrape_operator(table)
    labels = {"namespace": "team-a", "sweep": "grid"}
    assert get(first, "yolo_operator_sweep_trials", **labels, state="pending") == 2
    assert get(first, "yolo_operator_sweep_trials", **labels, state="earlyStopped") == 0  # every state, 0 included
    assert get(first, "yolo_operator_sweep_info", **labels, phase="Pending") == 1
    assert not any(name == "yolo_operator_sweep_best_objective" for name, _ in first)  # no succeeded trial yet

    finish(gateway.trials[0], 0.4)
    finish(gateway.trials[1], 0.7)
    controller.step("team-a", "grid")  # trial 2 made
    finish(gateway.trials[2], 0.5)
    controller.step("team-a", "grid")
    final = scrape_operator(table)
    assert get(final, "yolo_operator_sweep_trials", **labels, state="succeeded") == 3
    assert get(final, "yolo_operator_sweep_trials", **labels, state="pending") == 0
    assert get(final, "yolo_operator_sweep_best_objective", **labels, metric="mAP50-95") == 0.7
    assert get(final, "yolo_operator_sweep_info", **labels, phase="Succeeded") == 1

    controller.step("team-a", "grid")  # a final sweep: nothing written, its series stay
    assert get(scrape_operator(table), "yolo_operator_sweep_best_objective", **labels, metric="mAP50-95") == 0.7
    gateway.sweep = None  # deleted: its series go at once
    controller.step("team-a", "grid")
    assert not any(name.startswith("yolo_operator_sweep") for name, _ in scrape_operator(table))


def test_a_finished_sweep_is_exported_for_the_retention_period_then_dropped(table: metrics.SweepTable) -> None:
    counts = {"total": 2, "succeeded": 1, "failed": 1}
    best = {"trial": 0, "name": "s-000", "objective": 0.6}
    table.observe("ns", "recent", {"phase": "Succeeded", "counts": counts, "best": best,
                                   "completionTime": ago(60)}, "mAP50")
    table.observe("ns", "old", {"phase": "Failed", "counts": counts, "completionTime": ago(3600)}, "mAP50")
    table.observe("ns", "running", {"phase": "Running", "counts": {"total": 1, "running": 1}}, "mAP50")
    samples = scrape_operator(table)
    sweeps = {dict(labels)["sweep"] for name, labels in samples if name == "yolo_operator_sweep_info"}
    assert sweeps == {"recent", "running"}
    assert get(samples, "yolo_operator_sweep_trials", namespace="ns", sweep="recent", state="failed") == 1
    assert get(samples, "yolo_operator_sweep_best_objective", namespace="ns", sweep="recent", metric="mAP50") == 0.6


class SweepingBackend(MemoryBackend):
    """The test backend with sweeps (what ``GET /sweeps`` reads)."""

    def __init__(self, sweeps: list[SweepRecord]) -> None:
        super().__init__()
        self.sweeps = sweeps

    def list_sweeps(self, namespaces: Any = None) -> list[SweepRecord]:
        return self.sweeps


def record(name: str, status: dict[str, Any]) -> SweepRecord:
    return SweepRecord(sweep_id=f"id-{name}", name=name, namespace="team-a", spec=SPEC,
                       status=YoloSweepStatus.model_validate(status), created_at=ago(7200))


def test_the_api_exports_each_current_sweep_with_the_trainings_retention() -> None:
    running = record("now", {"phase": "Running", "counts": {"total": 3, "running": 2, "succeeded": 1},
                             "best": {"trial": 1, "name": "now-001", "objective": 0.42}})
    recent = record("recent", {"phase": "Succeeded", "counts": {"total": 1, "succeeded": 1},
                               "completionTime": ago(60)})
    old = record("old", {"phase": "Failed", "counts": {"total": 1, "failed": 1}, "completionTime": ago(3600)})
    backend = SweepingBackend([running, recent, old])
    settings = ApiSettings(backend="local", auth_token=TOKEN, metrics_retention_seconds=900)
    with TestClient(create_app(settings, backend), headers=AUTH) as http:
        samples = parse(http.get("/metrics").text)
    labels = {"namespace": "team-a", "name": "now", "sweep_id": "id-now"}
    assert get(samples, "yolo_sweep_trials", **labels, state="running") == 2
    assert get(samples, "yolo_sweep_trials", **labels, state="earlyStopped") == 0
    assert get(samples, "yolo_sweep_best_objective", **labels, metric="mAP50-95") == 0.42
    assert get(samples, "yolo_sweep_info", **labels, state="running") == 1
    shown = {dict(labels)["name"] for name, labels in samples if name == "yolo_sweep_info"}
    assert shown == {"now", "recent"}


def test_promtool_accepts_the_sweep_series(table: metrics.SweepTable) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make install` (Debian package prometheus)")
    table.observe("ns", "s", {"phase": "Running", "counts": {"total": 2, "running": 1, "succeeded": 1},
                              "best": {"trial": 0, "name": "s-000", "objective": 0.5}}, "mAP50-95")
    backend = SweepingBackend([record("s", {"phase": "Running", "counts": {"total": 1, "running": 1},
                                            "best": {"trial": 0, "name": "s-000", "objective": 0.5}})])
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend), headers=AUTH) as http:
        api = http.get("/metrics").text
    operator = generate_latest(metrics.REGISTRY).decode()
    assert "yolo_operator_sweep_best_objective" in operator and "yolo_sweep_best_objective" in api
    for exposition in (api, operator):
        checked = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
