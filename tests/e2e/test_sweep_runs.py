"""Opt-in, on a real API server: YoloSweeps (issue 21).

* the schema and its CEL rules refuse a sweep they cannot run, naming the field;
* a 2x2 grid with ``parallelism: 2`` and real trainers: never more than two trials unfinished at any sampled
  moment, four trials, the best is the argmax of their final objective;
* the median rule stops a poor trial (EarlyStopped, its partial metrics kept); the trainers' reports are
  written as a trainer writes them, so which trial is poor is certain;
* the operator killed mid-sweep: the restarted one carries on from the trials, no number made twice;
* a quota that admits one trainer pod at a time: the sweep waits and says why, and no trial fails for it.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from kubelet import LocalKubelet
from trainings import SWEEPS, G, P, V, create_sweep, sweep_status, trials_of
from waiting import eventually
from yolo_crd.outcome import final
from yolo_crd.status import TrainingStatus

pytestmark = pytest.mark.e2e
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--namespace"]


def report(kube: client.ApiClient, namespace: str, name: str, values: list[float], *, completed: bool) -> None:
    """Write a trial's epochs (mAP50-95 per epoch) and, when ``completed``, its final report, as its trainer would."""
    history = [{"epoch": e, "mAP50-95": v} for e, v in enumerate(values, start=1)]
    patch: dict[str, Any] = {"stage": "training", "currentEpoch": len(values), "totalEpochs": 4,
                             "metrics": history[-1], "history": history}
    if completed:
        patch.update(stage="completed", finalMetrics={"mAP50": values[-1], "mAP50-95": values[-1], "precision": 0.5,
                                                      "recall": 0.5, "f1_score": 0.5})
    client.CustomObjectsApi(kube).patch_namespaced_custom_object_status(G, V, namespace, P, name, {"status": patch})


def trial_names(kube: client.ApiClient, namespace: str, sweep: str) -> list[str]:
    return [t["metadata"]["name"] for t in trials_of(kube, namespace, sweep)]


def unfinished(kube: client.ApiClient, namespace: str, sweep: str) -> int:
    """Trials whose outcome is still open (yolo_crd.outcome.final: a trainer's final report closes it at once)."""
    return sum(not final(TrainingStatus.model_validate(t.get("status") or {}))
               for t in trials_of(kube, namespace, sweep))


def until_final(kube: client.ApiClient, namespace: str, sweep: str, check: Callable[[], None],
                timeout: float) -> dict[str, Any]:
    """Wait for the sweep's final phase, calling ``check`` at every sample on the way."""
    def done() -> dict[str, Any] | None:
        check()
        found = sweep_status(kube, namespace, sweep)
        return found if found.get("phase") in ("Succeeded", "Failed") else None

    return eventually(done, timeout=timeout, interval=0.5)


@pytest.mark.parametrize(("spec", "says"), [
    ({"parameters": {"data": {"values": ["x.yaml"]}}}, "spec.parameters"),
    ({"parameters": {"lr0": {"min": 0.1, "max": 0.01}}}, "empty or inverted"),
    ({"parameters": {"lr0": {"min": 0.1, "max": 0.1}}}, "empty or inverted"),
    ({"parameters": {"lr0": {"min": 0.0, "max": 0.1, "scale": "log"}}}, "log range"),
    ({"algorithm": "grid", "parameters": {"lr0": {"min": 0.01, "max": 0.1}}}, "grid needs values"),
    ({"maxTrials": 201}, "spec.maxTrials"),
    ({"parallelism": 0}, "spec.parallelism"),
    ({"parameters": {}}, "spec.parameters"),
])
def test_the_schema_refuses_a_sweep_it_cannot_run(kube: client.ApiClient, namespace: str, spec: dict[str, Any],
                                                  says: str) -> None:
    body = {"parameters": {"lr0": {"values": [0.01]}}, "objective": {"metric": "mAP50-95"}, "maxTrials": 2, **spec}
    with pytest.raises(client.ApiException) as refused:
        create_sweep(kube, namespace, "bad", {}, **body)
    assert refused.value.status == 422 and says in str(refused.value.body), refused.value.body


def test_a_grid_runs_at_most_parallelism_trials_and_finds_the_best(kube: client.ApiClient, namespace: str,
                                                                   operator: None, kubelet: LocalKubelet,
                                                                   tmp_path: Path) -> None:
    from yolo_trainer.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", classes=2, train=32, val=8)
    template = {"data": str(data), "gpus": 0, "epochs": 1, "imgsz": 64, "batch": 8,
                "hyperparameters": {"workers": 0}, **kubelet.placement()}
    create_sweep(kube, namespace, "grid", template, algorithm="grid", maxTrials=4, parallelism=2,
                 parameters={"lr0": {"values": [0.01, 0.02]}, "momentum": {"values": [0.9, 0.937]}},
                 objective={"metric": "mAP50-95"})
    seen: list[int] = []
    result = until_final(kube, namespace, "grid", lambda: seen.append(unfinished(kube, namespace, "grid")), 600)
    assert max(seen) <= 2, seen
    trials = trials_of(kube, namespace, "grid")
    assert [t["metadata"]["name"] for t in trials] == [f"grid-{n:03d}" for n in range(4)]
    assert {(t["spec"]["hyperparameters"]["lr0"], t["spec"]["hyperparameters"]["momentum"]) for t in trials} == {
        (0.01, 0.9), (0.01, 0.937), (0.02, 0.9), (0.02, 0.937)}
    assert result["phase"] == "Succeeded" and result["counts"]["succeeded"] == 4, result
    objectives = [t["status"]["finalMetrics"]["mAP50-95"] for t in trials]
    best = max(range(4), key=lambda n: (objectives[n], -n))
    assert result["best"]["name"] == f"grid-{best:03d}" and result["best"]["objective"] == objectives[best]
    assert result["done"] == "4/4"


def test_the_median_rule_stops_a_poor_trial(kube: client.ApiClient, namespace: str, operator: None) -> None:
    create_sweep(kube, namespace, "median", {"gpus": 0, "epochs": 4}, algorithm="random", seed=0, maxTrials=3,
                 parallelism=1, parameters={"lr0": {"min": 0.001, "max": 0.1, "scale": "log"}},
                 objective={"metric": "mAP50-95"}, earlyStopping={"type": "median", "minEpochs": 1, "minTrials": 1})
    first = eventually(lambda: trial_names(kube, namespace, "median"), timeout=60, interval=0.5)
    report(kube, namespace, first[0], [0.5, 0.6, 0.7, 0.8], completed=True)
    second = eventually(lambda: trial_names(kube, namespace, "median")[1:], timeout=60, interval=0.5)[0]
    report(kube, namespace, second, [0.1], completed=False)
    try:
        stopped = eventually(lambda: (s := trials_of(kube, namespace, "median")[1].get("status") or {}).get("phase")
                             == "Failed" and s, timeout=30, interval=0.5)
    except AssertionError:
        raise AssertionError((sweep_status(kube, namespace, "median"), trials_of(kube, namespace, "median"))) from None
    assert stopped["reason"] == "EarlyStopped" and "median 0.5000" in stopped["message"], stopped
    assert stopped["metrics"]["mAP50-95"] == 0.1  # its partial metrics stay
    third = eventually(lambda: trial_names(kube, namespace, "median")[2:], timeout=60, interval=0.5)[0]
    report(kube, namespace, third, [0.6, 0.7, 0.75, 0.9], completed=True)
    result = until_final(kube, namespace, "median", lambda: None, 60)
    assert result["phase"] == "Succeeded" and result["counts"]["earlyStopped"] == 1 and result["counts"]["succeeded"] == 2
    assert result["best"]["name"] == third and result["best"]["objective"] == 0.9


def test_an_operator_killed_mid_sweep_carries_on_from_the_trials(kube: client.ApiClient, namespace: str) -> None:
    with KopfRunner([*OPERATOR, namespace]):
        create_sweep(kube, namespace, "restart", {"gpus": 0, "epochs": 4}, algorithm="grid", maxTrials=4,
                     parallelism=2, parameters={"lr0": {"values": [0.01, 0.02, 0.03, 0.04]}},
                     objective={"metric": "mAP50-95"})
        eventually(lambda: len(trial_names(kube, namespace, "restart")) == 2, timeout=60, interval=0.5)
    report(kube, namespace, "restart-000", [0.3], completed=True)  # while no operator runs
    with KopfRunner([*OPERATOR, namespace]):
        eventually(lambda: len(trial_names(kube, namespace, "restart")) == 3, timeout=60, interval=0.5)
        assert unfinished(kube, namespace, "restart") <= 2
        report(kube, namespace, "restart-001", [0.4], completed=True)
        report(kube, namespace, "restart-002", [0.2], completed=True)
        eventually(lambda: len(trial_names(kube, namespace, "restart")) == 4, timeout=60, interval=0.5)
        report(kube, namespace, "restart-003", [0.1], completed=True)
        result = until_final(kube, namespace, "restart", lambda: None, 60)
    assert trial_names(kube, namespace, "restart") == [f"restart-{n:03d}" for n in range(4)]
    assert result["phase"] == "Succeeded" and result["counts"]["total"] == 4 and result["best"]["name"] == "restart-001"


def test_a_quota_of_one_pod_makes_the_sweep_wait_not_fail(kube: client.ApiClient, namespace: str, operator: None,
                                                          kubelet: LocalKubelet, tmp_path: Path) -> None:
    from yolo_trainer.synthetic import make_dataset

    client.CoreV1Api(kube).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}})
    data = make_dataset(tmp_path / "data", classes=2, train=32, val=8)
    template = {"data": str(data), "gpus": 0, "epochs": 1, "imgsz": 64, "batch": 8,
                "hyperparameters": {"workers": 0}, **kubelet.placement()}
    create_sweep(kube, namespace, "quota", template, algorithm="grid", maxTrials=2, parallelism=2,
                 parameters={"lr0": {"values": [0.01, 0.02]}}, objective={"metric": "mAP50-95"})
    reasons: set[str] = set()

    def sample() -> None:
        reasons.update(str((t.get("status") or {}).get("reason")) for t in trials_of(kube, namespace, "quota"))

    result = until_final(kube, namespace, "quota", sample, 600)
    assert "FailedCreate" in reasons, reasons  # one trial waited for the quota...
    assert result["phase"] == "Succeeded" and result["counts"] == {  # ...and none failed for it
        "total": 2, "pending": 0, "running": 0, "succeeded": 2, "failed": 0, "earlyStopped": 0}, result
    assert client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, namespace, SWEEPS, "quota")
