"""YoloSweep's contract: the spec refuses what cannot run (naming the field), the search is deterministic and
rebuilt from the trials alone, the median rule, the plan's guarantees (parallelism, budget, no number twice,
cancel and suspend), the bounded status, and the CRD generated from the contract."""

import importlib.util
import json
from typing import Any

import pytest
from pydantic import ValidationError

from crd import SWEEP_CRD_PATH, sweep_openapi_schema
from schema import SchemaError, StructuralSchema
from yolo_crd.search import TrialRecord, best, early_stops, suggest
from yolo_crd.sweep import MAX_TRIALS_CAP, YoloSweepSpec
from yolo_crd.sweep_status import TRIAL_TABLE_LIMIT, plan, summary, trial_record
from yolo_crd.wire import one_line

BASE: dict[str, Any] = {"template": {"model": "yolov8n.yaml", "data": "d.yaml", "epochs": 4},
                        "objective": {"metric": "mAP50-95"}, "maxTrials": 4, "parallelism": 2,
                        "parameters": {"lr0": {"values": [0.01, 0.001]}, "momentum": {"values": [0.9, 0.937]}}}


def sweep(**fields: Any) -> YoloSweepSpec:
    return YoloSweepSpec.model_validate({**BASE, **fields})


def record(number: int, state: str = "running", objective: float | None = None, curve: dict[int, float] | None = None,
           **fields: Any) -> TrialRecord:
    epoch = max(curve) if curve else None
    return TrialRecord(number, f"s-{number:03d}", {"lr0": 0.01}, state, objective, epoch, curve or {}, **fields)


BAD = [
    ({"parameters": {"data": {"values": ["x.yaml"]}}}, "parameters.data", "cannot be searched"),
    ({"parameters": {"project": {"values": ["x"]}}}, "parameters.project", "cannot be searched"),
    ({"parameters": {"lr0": {"min": 0.1, "max": 0.01}}}, "parameters.lr0", "empty or inverted"),
    ({"parameters": {"lr0": {"min": 0.1, "max": 0.1}}}, "parameters.lr0", "empty or inverted"),
    ({"parameters": {"lr0": {"min": 0.0, "max": 0.1, "scale": "log"}}}, "parameters.lr0", "log range"),
    ({"parameters": {"lr0": {"values": []}}}, "parameters.lr0.values", "at least 1"),
    ({"algorithm": "grid", "parameters": {"lr0": {"min": 0.001, "max": 0.1}}}, "parameters.lr0", "grid needs values"),
    ({"parameters": {"epochs": {"min": 1.5, "max": 3}}}, "parameters.epochs", "integer"),
    ({"parameters": {"lr0": {"values": [100.0]}}}, "parameters.lr0: values[0]", "between"),
    ({"parameters": {"optimizer": {"min": 1, "max": 2}}}, "parameters.optimizer", "not numeric"),
    ({"maxTrials": MAX_TRIALS_CAP + 1}, "maxTrials", "less than or equal to 200"),
    ({"parallelism": 0}, "parallelism", "greater than or equal to 1"),
    ({"objective": {"metric": "mAP50", "goal": "minimize"}}, "objective", "maximize"),
    ({"parameters": {}}, "parameters", "at least 1"),
]


@pytest.mark.parametrize(("fields", "where", "says"), BAD)
def test_a_sweep_that_cannot_run_is_refused_naming_the_field(fields: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        sweep(**fields)
    text = one_line(refused.value)
    assert where in text and says in text, text


def test_a_grid_enumerates_every_combination_once_in_order() -> None:
    spec = sweep(algorithm="grid")
    combos = [suggest(spec, n, []) for n in range(spec.trial_budget())]
    assert combos == [{"lr0": 0.01, "momentum": 0.9}, {"lr0": 0.01, "momentum": 0.937},
                      {"lr0": 0.001, "momentum": 0.9}, {"lr0": 0.001, "momentum": 0.937}]
    assert sweep(algorithm="grid", maxTrials=10).trial_budget() == 4


def test_random_draws_are_reproducible_per_number_and_respect_scale_and_integers() -> None:
    spec = sweep(parameters={"lr0": {"min": 1e-4, "max": 1e-1, "scale": "log"}, "epochs": {"min": 1, "max": 5}},
                 maxTrials=50)
    draws = [suggest(spec, n, []) for n in range(50)]
    assert draws == [suggest(spec, n, [record(0, "succeeded", 0.9)]) for n in range(50)]  # trials don't matter
    assert all(1e-4 <= d["lr0"] <= 1e-1 and isinstance(d["epochs"], int) and 1 <= d["epochs"] <= 5 for d in draws)
    assert sum(d["lr0"] < 1e-2 for d in draws) > 20  # log scale: two decades of three below 0.01
    assert suggest(sweep(seed=1, **{k: v for k, v in spec.wire().items() if k != "seed"}), 0, []) != draws[0]


def test_tpe_is_reproducible_and_learns_from_finished_trials() -> None:
    spec = sweep(algorithm="tpe", maxTrials=20, parameters={"lr0": {"min": 1e-4, "max": 1e-1, "scale": "log"}})
    finished = [TrialRecord(n, f"s-{n:03d}", {"lr0": lr}, "succeeded", 1.0 - abs(lr - 0.01) * 10)
                for n, lr in enumerate([0.0001, 0.001, 0.01, 0.05, 0.09, 0.02, 0.005])]
    first = suggest(spec, 7, finished)
    assert first == suggest(spec, 7, finished)  # an operator restarted rebuilds the same search
    assert 1e-4 <= first["lr0"] <= 1e-1


def test_the_median_rule_stops_only_a_trial_below_the_median_after_its_minimums() -> None:
    spec = sweep(earlyStopping={"type": "median", "minEpochs": 2, "minTrials": 2})
    done = [record(0, "succeeded", 0.8, {1: 0.3, 2: 0.5, 4: 0.8}), record(1, "succeeded", 0.6, {1: 0.2, 2: 0.4})]
    poor, good, early = record(2, curve={1: 0.1, 2: 0.2}), record(3, curve={1: 0.3, 2: 0.6}), record(4, curve={1: 0.0})
    stops = early_stops(spec, [*done, poor, good, early])
    assert [(trial.number, why.split(":")[0]) for trial, why in stops] == [(2, "early stopped at epoch 2")]
    assert "median 0.4500 of 2 finished trials" in stops[0][1]
    assert early_stops(spec, [done[0], poor]) == []  # fewer finished trials than minTrials
    assert early_stops(sweep(), [*done, poor]) == []  # off by default


def test_a_loss_objective_is_minimized() -> None:
    spec = sweep(objective={"metric": "valBoxLoss", "goal": "minimize"})
    trials = [record(0, "succeeded", 1.2), record(1, "succeeded", 0.7), record(2, "failed", 0.1)]
    found = best(spec, trials)
    assert found is not None and found.number == 1


def test_the_plan_never_exceeds_parallelism_or_the_budget_and_never_repeats_a_number() -> None:
    spec = sweep(algorithm="grid")
    first = plan(spec, [])
    assert [n for n, _ in first.create] == [0, 1]
    running = [record(0), record(1)]
    assert plan(spec, running).create == []
    after = plan(spec, [record(0, "succeeded", 0.5), record(1)])
    assert [n for n, _ in after.create] == [2]
    gap = plan(spec, [record(0, "succeeded", 0.5), record(2, "failed"), record(3)])  # number 1 lost in a crash
    assert [n for n, _ in gap.create] == [1]
    full = plan(spec, [record(n, "succeeded", 0.1 * n) for n in range(4)])
    assert full.create == [] and full.status.phase == "Succeeded" and full.status.done == "4/4"
    assert full.status.best is not None and full.status.best.trial == 3


def test_cancel_and_suspend_stop_running_trials_and_start_none() -> None:
    trials = [record(0, "succeeded", 0.5), record(1), record(2, "pending"), record(3, stopping=True)]
    cancelled = plan(sweep(maxTrials=8), trials, cancelled=True)
    assert cancelled.create == [] and [t.number for t in cancelled.cancel] == [1, 2]
    assert cancelled.status.phase == "Running" and cancelled.status.reason == "Cancelled"
    over = plan(sweep(maxTrials=8), [record(0, "succeeded", 0.5), record(1, "failed")], cancelled=True)
    assert over.status.phase == "Failed" and over.status.reason == "Cancelled"
    suspended = plan(sweep(maxTrials=8, suspend=True), trials)
    assert suspended.create == [] and suspended.status.reason == "Suspended"


def test_a_sweep_without_a_success_fails_saying_why() -> None:
    status = summary(sweep(maxTrials=2), [record(0, "failed", reason="DatasetInvalid"),
                                          record(1, "failed", reason="DatasetInvalid")])
    assert status.phase == "Failed" and status.reason == "NoTrialSucceeded" and "2 x DatasetInvalid" in str(
        status.message)


def test_waiting_trials_say_why_the_sweep_waits() -> None:
    status = summary(sweep(), [record(0, "pending", reason="FailedCreate: exceeded quota: one-pod")])
    assert status.phase == "Pending" and status.reason == "TrialsWaiting" and "exceeded quota" in str(status.message)


def test_the_status_of_a_sweep_of_200_trials_stays_under_32_kib() -> None:
    spec = sweep(maxTrials=MAX_TRIALS_CAP, parameters={name: {"min": 0.001, "max": 0.9} for name in (
        "lr0", "lrf", "momentum", "weight_decay", "hsv_h", "hsv_s", "hsv_v", "mosaic")})
    trials = [TrialRecord(n, f"a-sweep-with-a-long-name-of-fifty-two-characters-{n:03d}", suggest(spec, n, []),
                          "succeeded", 0.123456789 * (n % 7), 300, {}, "5b8f0c4e-2d4b-4b1e-9d7a-000000000001",
                          f"s3://bucket/prefix/5b8f0c4e-2d4b-4b1e-9d7a-{n:012d}/best.pt") for n in range(200)]
    status = summary(spec, trials)
    assert len(status.trials or []) == TRIAL_TABLE_LIMIT and status.trials_omitted == 200 - TRIAL_TABLE_LIMIT
    body = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloSweep", "metadata": {"name": "x" * 52},
            "spec": spec.wire(), "status": status.wire()}
    assert len(json.dumps(body)) < 32 * 1024


def test_a_trial_is_read_back_from_its_labels_annotation_and_status() -> None:
    spec = sweep()
    obj = {"metadata": {"name": "s-001", "uid": "u1", "labels": {"yolo-operator.io/trial": "1"},
                        "annotations": {"yolo-operator.io/trial-parameters": '{"lr0": 0.01}',
                                        "yolo-operator.io/early-stop": "early stopped"}},
           "status": {"phase": "Running", "stage": "training", "metrics": {"epoch": 3, "mAP50-95": 0.2},
                      "history": [{"epoch": 1, "mAP50-95": 0.1}, {"epoch": 3, "mAP50-95": 0.2}]}}
    found = trial_record(obj, spec)
    assert found is not None
    assert (found.number, found.parameters, found.state, found.objective, found.epoch, found.stopping) == (
        1, {"lr0": 0.01}, "running", 0.2, 3, True)
    assert found.curve == {1: 0.1, 3: 0.2}
    assert trial_record({"metadata": {"name": "x"}}, spec) is None  # not a numbered trial


def test_the_committed_crd_is_what_the_generator_writes() -> None:
    script = SWEEP_CRD_PATH.parents[4] / "scripts/make_sweep_crd.py"
    loaded = importlib.util.spec_from_file_location("make_sweep_crd", script)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    assert SWEEP_CRD_PATH.read_text(encoding="utf-8") == module.render(), "run python scripts/make_sweep_crd.py"


@pytest.mark.parametrize(("fields", "where", "says"), [case for case in BAD if case[1] not in (
    "parameters.epochs", "parameters.lr0: values[0]", "parameters.optimizer", "parameters.lr0.values")])
def test_the_crd_refuses_the_same_sweeps(fields: dict[str, Any], where: str, says: str) -> None:
    schema = StructuralSchema("YoloSweep", sweep_openapi_schema())
    schema.admit({"spec": {**BASE}}, None)
    with pytest.raises(SchemaError):
        schema.admit({"spec": {**BASE, **fields}}, None)
