"""The Job/Pod → status translator, table-tested with realistic objects."""

from typing import Any

from yolo_crd.status import TrainingStatus
from yolo_operator.translate import observe

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}


def job(conditions: list[dict[str, Any]] | None = None, *, suspend: bool = False, active: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions or []}
    if active:
        status.update(active=active, startTime="2026-01-01T00:00:00Z")
    return {"metadata": {"name": "t-train"}, "spec": {"suspend": suspend, "backoffLimit": 3, "activeDeadlineSeconds": 60},
            "status": status}


def pod(phase: str = "Pending", *, scheduled: dict[str, Any] | None = None, waiting: dict[str, Any] | None = None,
        terminated: dict[str, Any] | None = None, last_terminated: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "trainer", "image": "registry.local/trainer:1", "state": {}, "lastState": {}}
    if waiting:
        container["state"]["waiting"] = waiting
    if terminated:
        container["state"]["terminated"] = terminated
    if last_terminated:
        container["lastState"]["terminated"] = last_terminated
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [container]}
    if scheduled:
        status["conditions"] = [{"type": "PodScheduled", **scheduled}]
    return {"metadata": {"name": "t-train-abcde", "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": status}


def status(**wire: Any) -> TrainingStatus:
    return TrainingStatus.model_validate(wire)


UNSCHEDULABLE = {"status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}


def test_unschedulable_says_why_in_status() -> None:
    result = observe(job(active=1), [pod(scheduled=UNSCHEDULABLE)], status(phase="Pending", stage="scheduling"))
    assert result.patch["reason"] == "Unschedulable"
    assert result.patch["message"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    assert result.patch["conditions"][0]["type"] == "Scheduled" and result.patch["conditions"][0]["status"] == "False"
    assert result.events == [("Warning", "Unschedulable", UNSCHEDULABLE["message"])]
    again = observe(job(active=1), [pod(scheduled=UNSCHEDULABLE)], status(phase="Pending", stage="scheduling", **result.patch))
    assert again.patch == {} and again.events == []  # nothing new: no write, no duplicate Event


def test_suspended_job_is_queued() -> None:
    result = observe(job(suspend=True), [], status(phase="Pending", stage="scheduling"))
    assert result.patch["stage"] == "queued" and "Kueue" in result.patch["message"]


def test_image_pull_errors_name_the_image() -> None:
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry.local/trainer:1"'}
    result = observe(job(active=1), [pod(waiting=waiting)], status(phase="Pending"))
    assert result.patch["reason"] == "ImagePullBackOff" and "registry.local/trainer:1" in result.patch["error"]
    assert result.patch.get("phase", "Pending") == "Pending"


def test_running_pod_sets_running_and_clears_waiting_reasons() -> None:
    result = observe(job(active=1), [pod("Running")], status(phase="Pending", stage="scheduling", reason="Unschedulable",
                                                             message="0/3 nodes"))
    patch = result.patch
    assert patch["phase"] == "Running" and patch["stage"] == "initializing" and patch["reason"] is None
    assert patch["startTime"] == "2026-01-01T00:00:00Z" and patch["message"] is None
    assert ("Normal", "Started", "the trainer is running") in result.events


def test_running_never_touches_the_trainers_fields() -> None:
    current = status(phase="Running", stage="training", currentEpoch=3, totalEpochs=10, progress=30.0,
                     startTime="2026-01-01T00:00:00Z",
                     conditions=[{"type": "Running", "status": "True", "reason": "PodRunning",
                                  "message": "the trainer is running", "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    assert observe(job(active=1), [pod("Running")], current).patch == {}


def test_complete_with_final_metrics_succeeds() -> None:
    result = observe(job([{"type": "Complete", "status": "True"}]), [pod("Succeeded")],
                     status(phase="Running", stage="completed", finalMetrics=FINAL))
    assert result.patch["phase"] == "Succeeded" and result.patch["completionTime"]
    assert result.events[0][:2] == ("Normal", "Succeeded")


def test_complete_without_final_metrics_fails() -> None:
    result = observe(job([{"type": "Complete", "status": "True"}]), [], status(phase="Running", stage="training"))
    assert result.patch["phase"] == "Failed" and "without reporting final metrics" in result.patch["error"]


def test_deadline_exceeded() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    result = observe(job(failed), [], status(phase="Running", stage="training"))
    assert result.patch["reason"] == "DeadlineExceeded" and "60s" in result.patch["error"]


def test_oom_killed() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    pods = [pod("Failed", terminated={"reason": "OOMKilled", "exitCode": 137})]
    result = observe(job(failed), pods, status(phase="Running", stage="training"))
    assert result.patch["reason"] == "OOMKilled" and "resources.limits.memory" in result.patch["error"]
    retried = [pod("Failed", terminated={"reason": "Error", "exitCode": 1}, last_terminated={"reason": "OOMKilled"})]
    assert observe(job(failed), retried, status(phase="Running")).patch["reason"] == "OOMKilled"


def test_backoff_limit_exceeded_quotes_the_last_message() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    pods = [pod("Failed", terminated={"reason": "Error", "exitCode": 1, "message": "ValueError: boom\n"})]
    result = observe(job(failed), pods, status(phase="Running"))
    assert result.patch["reason"] == "BackoffLimitExceeded" and result.patch["error"] == "the trainer failed 3 retries: ValueError: boom"


def test_the_trainers_own_failure_is_kept() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]
    current = status(phase="Running", stage="failed", reason="ModelNotFound", error="模型文件不存在: /w.pt")
    result = observe(job(failed), [pod("Failed", terminated={"reason": "Error", "exitCode": 2})], current)
    assert result.patch["phase"] == "Failed" and "reason" not in result.patch and "error" not in result.patch


def test_finished_trainings_never_move() -> None:
    for phase in ("Succeeded", "Failed"):
        assert observe(job(active=1), [pod("Running")], status(phase=phase)).patch == {}
    assert observe(None, [], status(phase="Pending")).patch == {}
