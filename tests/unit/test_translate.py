"""The Job/Pod → status translator, table-tested with realistic objects (shapes of a real Job controller)."""

from typing import Any

import pytest

from yolo_crd.outcome import display_stage, task_state
from yolo_crd.ownership import OPERATOR_FIELDS
from yolo_crd.status import TrainingStatus
from yolo_operator.sync import Synchronizer
from yolo_operator.translate import cancelled, job_was_made, observe, retold

FINAL = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
FAILED_BY_TRAINER = {"reason": "DatasetInvalid", "message": "dataset file /data/x.yaml does not exist"}


def job(conditions: list[dict[str, Any]] | None = None, *, suspend: bool = False, active: int = 0,
        **status_fields: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions or [], **status_fields}
    if active:
        status.update(active=active, startTime="2026-01-01T00:00:00Z")
    return {"metadata": {"name": "t-5b8f0c4e"}, "spec": {"suspend": suspend, "backoffLimit": 3,
                                                         "activeDeadlineSeconds": 60}, "status": status}


def condition(kind: str, reason: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": reason}


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
    return {"metadata": {"name": "t-5b8f0c4e-abcde", "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": status}


def status(**wire: Any) -> TrainingStatus:
    return TrainingStatus.model_validate(wire)


def after(current: TrainingStatus, patch: dict[str, Any]) -> TrainingStatus:
    """The status once a merge patch is applied (nulls remove fields)."""
    merged = {**current.wire(), **patch}
    return status(**{key: value for key, value in merged.items() if value is not None})


def conditions_of(patch: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in patch.get("conditions", [])}


UNSCHEDULABLE = {"status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}


def test_unschedulable_says_why_in_status() -> None:
    result = observe(job(active=1), [pod(scheduled=UNSCHEDULABLE)], status(phase="Pending"))
    assert result.patch["reason"] == "Unschedulable"
    assert result.patch["message"] == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    assert conditions_of(result.patch) == {"Scheduled": ("False", "Unschedulable"), "Succeeded": ("Unknown", "Pending")}
    assert result.events == [("Warning", "Unschedulable", UNSCHEDULABLE["message"])]
    again = observe(job(active=1), [pod(scheduled=UNSCHEDULABLE)], after(status(phase="Pending"), result.patch))
    assert again.patch == {} and again.events == []  # nothing new: no write, no duplicate Event


def test_suspended_job_is_queued() -> None:
    result = observe(job(suspend=True), [], status())
    assert result.patch["phase"] == "Pending" and result.patch["reason"] == "Queued" and "Kueue" in result.patch["message"]
    assert conditions_of(result.patch)["Suspended"] == ("True", "Suspended")
    assert display_stage(after(status(), result.patch)) == "queued"


def test_image_pull_errors_name_the_image() -> None:
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry.local/trainer:1"'}
    result = observe(job(active=1), [pod(waiting=waiting)], status(phase="Pending"))
    assert result.patch["reason"] == "ImagePullBackOff" and "registry.local/trainer:1" in result.patch["message"]
    assert result.patch.get("phase", "Pending") == "Pending"


def test_a_container_that_cannot_be_created_says_why() -> None:
    """A missing object-storage Secret (or key) leaves the pod in CreateContainerConfigError: say so in status."""
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "s3-default" not found'}
    result = observe(job(active=1), [pod(waiting=waiting)], status(phase="Pending"))
    assert result.patch["reason"] == "CreateContainerConfigError" and 's3-default' in result.patch["message"]
    assert result.events == [("Warning", "CreateContainerConfigError", result.patch["message"])]


def test_running_pod_sets_running_and_clears_waiting_reasons() -> None:
    current = status(phase="Pending", reason="Unschedulable", message="0/3 nodes")
    result = observe(job(active=1), [pod("Running")], current)
    patch = result.patch
    assert patch["phase"] == "Running" and patch["reason"] is None and patch["message"] is None
    assert patch["startTime"] == "2026-01-01T00:00:00Z" and "stage" not in patch
    assert conditions_of(patch)["Running"] == ("True", "PodRunning")
    assert ("Normal", "Started", "the trainer is running") in result.events


def test_resume_after_suspend_clears_queued() -> None:
    queued = after(status(), observe(job(suspend=True), [], status()).patch)
    result = observe(job(active=1), [pod("Running")], queued)
    assert result.patch["reason"] is None and conditions_of(result.patch)["Suspended"] == ("False", "Resumed")


def test_the_operator_never_writes_a_field_of_the_trainer() -> None:
    current = status(phase="Running", stage="training", currentEpoch=3, totalEpochs=10, progress=30.0,
                     startTime="2026-01-01T00:00:00Z")
    first = observe(job(active=1), [pod("Running")], current)
    assert set(first.patch) <= OPERATOR_FIELDS
    assert observe(job(active=1), [pod("Running")], after(current, first.patch)).patch == {}


@pytest.mark.parametrize("between", [
    job(failed=1),  # the first attempt failed, the next pod is not created yet
    job(uncountedTerminatedPods={"failed": ["uid-1"]}),  # a pod ended, the Job controller has not counted it
    job(uncountedTerminatedPods={"succeeded": ["uid-1"]}),
    job(succeeded=1),
], ids=["between-attempts", "uncounted-failed", "uncounted-succeeded", "succeeded-counted"])
def test_a_running_training_is_never_shown_pending_between_pods(between: dict[str, Any]) -> None:
    running = status(phase="Running", stage="training", currentEpoch=2, startTime="2026-01-01T00:00:00Z")
    assert observe(between, [pod("Failed", terminated={"reason": "Error", "exitCode": 1})], running).patch == {}


def test_an_operator_restart_does_not_move_the_stage() -> None:
    """The bug: a catch-all 'no active pod' branch wrote stage=scheduling over the trainer's stage."""
    restarted = status(phase="Running", stage="training", currentEpoch=4, totalEpochs=10)
    result = observe(job(), [], restarted)
    assert "stage" not in result.patch and result.patch.get("phase", "Running") == "Running"
    assert display_stage(after(restarted, result.patch)) == "training"


def test_complete_with_final_metrics_succeeds() -> None:
    result = observe(job([condition("Complete", "CompletionsReached")]), [pod("Succeeded")],
                     status(phase="Running", stage="completed", finalMetrics=FINAL))
    assert result.patch["phase"] == "Succeeded" and result.patch["completionTime"]
    assert conditions_of(result.patch)["Succeeded"] == ("True", "Completed")
    assert result.events[0][:2] == ("Normal", "Succeeded")


def test_success_criteria_met_is_already_the_verdict() -> None:
    result = observe(job([condition("SuccessCriteriaMet", "CompletionsReached")], succeeded=1), [],
                     status(phase="Running", stage="completed", finalMetrics=FINAL))
    assert result.patch["phase"] == "Succeeded"


def test_complete_without_final_metrics_fails() -> None:
    result = observe(job([condition("Complete", "CompletionsReached")]), [], status(phase="Running", stage="training"))
    assert result.patch["phase"] == "Failed" and "without reporting final metrics" in result.patch["message"]


@pytest.mark.parametrize("kind", ["Failed", "FailureTarget"])
def test_deadline_exceeded(kind: str) -> None:
    result = observe(job([condition(kind, "DeadlineExceeded")]), [], status(phase="Running", stage="training"))
    assert result.patch["reason"] == "DeadlineExceeded" and "60s" in result.patch["message"]
    assert conditions_of(result.patch)["Succeeded"] == ("False", "DeadlineExceeded")


def test_oom_killed() -> None:
    failed = [condition("Failed", "BackoffLimitExceeded")]
    pods = [pod("Failed", terminated={"reason": "OOMKilled", "exitCode": 137})]
    result = observe(job(failed), pods, status(phase="Running", stage="training"))
    assert result.patch["reason"] == "OOMKilled" and "resources.limits.memory" in result.patch["message"]
    retried = [pod("Failed", terminated={"reason": "Error", "exitCode": 1}, last_terminated={"reason": "OOMKilled"})]
    assert observe(job(failed), retried, status(phase="Running")).patch["reason"] == "OOMKilled"


def test_backoff_limit_exceeded_quotes_the_last_message() -> None:
    failed = [condition("Failed", "BackoffLimitExceeded")]
    pods = [pod("Failed", terminated={"reason": "Error", "exitCode": 1, "message": "ValueError: boom\n"})]
    result = observe(job(failed), pods, status(phase="Running"))
    assert result.patch["reason"] == "BackoffLimitExceeded"
    assert result.patch["message"] == "the trainer failed 3 retries: ValueError: boom"


@pytest.mark.parametrize("job_conditions", [
    [condition("FailureTarget", "PodFailurePolicy")],
    [condition("FailureTarget", "PodFailurePolicy"), condition("Failed", "PodFailurePolicy")],
    [condition("FailureTarget", "BackoffLimitExceeded"), condition("Failed", "BackoffLimitExceeded")],
], ids=["failure-target", "pod-failure-policy", "backoff-limit"])
def test_the_trainers_own_failure_is_the_final_reason(job_conditions: list[dict[str, Any]]) -> None:
    """The bug: the trainer said DatasetInvalid, the resource ended with BackoffLimitExceeded."""
    current = status(phase="Running", stage="failed", trainingFailure=FAILED_BY_TRAINER)
    result = observe(job(job_conditions), [pod("Failed", terminated={"reason": "Error", "exitCode": 2})], current)
    assert result.patch["phase"] == "Failed" and result.patch["reason"] == "DatasetInvalid"
    assert result.patch["message"] == FAILED_BY_TRAINER["message"]
    assert result.events == [("Warning", "DatasetInvalid", FAILED_BY_TRAINER["message"])]
    assert conditions_of(result.patch)["Succeeded"] == ("False", "DatasetInvalid")


def test_a_late_trainer_report_retells_the_reason() -> None:
    concluded = status(phase="Failed", reason="BackoffLimitExceeded", message="the trainer failed 3 retries",
                       trainingFailure=FAILED_BY_TRAINER)
    result = observe(job([condition("Failed", "BackoffLimitExceeded")]), [], concluded)
    assert result.patch["reason"] == "DatasetInvalid" and "phase" not in result.patch
    assert retold(after(concluded, result.patch)).patch == {}
    deadline = status(phase="Failed", reason="DeadlineExceeded", message="too long", trainingFailure=FAILED_BY_TRAINER)
    assert retold(deadline).patch == {}  # an outside cause stays the cause


def test_cancel_ends_an_unfinished_training_only() -> None:
    result = cancelled(status(phase="Running", stage="training"))
    assert result.patch["phase"] == "Failed" and result.patch["reason"] == "Cancelled"
    assert result.events == [("Normal", "Cancelled", "training cancelled")]
    assert cancelled(status(phase="Succeeded", stage="completed", finalMetrics=FINAL)).patch == {}


def test_finished_trainings_never_move() -> None:
    for phase in ("Succeeded", "Failed"):
        assert observe(job(active=1), [pod("Running")], status(phase=phase, reason="X")).patch == {}
    assert observe(None, [], status(phase="Pending")).patch == {}


def test_a_failed_trainer_awaits_the_jobs_verdict() -> None:
    """A trainer failure may still be retried by the Job: the envelope waits for the operator's verdict."""
    reported = status(phase="Running", stage="failed", trainingFailure=FAILED_BY_TRAINER)
    assert task_state(reported).value == "progress"
    failed = observe(job([condition("FailureTarget", "PodFailurePolicy")]), [], reported)
    assert task_state(after(reported, failed.patch)).value == "failure"


def test_a_job_deleted_before_its_verdict_concludes_the_training() -> None:
    """The bug: a Job deleted by hand (or by its TTL while the operator was down) left the training Running
    for ever; the next reconcile made a new Job that trained again from scratch."""
    running = status(phase="Running", stage="training", currentEpoch=3, jobName="t-5b8f0c4e")
    result = observe(None, [], running)
    assert result.patch["phase"] == "Failed" and result.patch["reason"] == "JobDeleted"
    assert "t-5b8f0c4e" in result.patch["message"]
    assert task_state(after(running, result.patch)).value == "failure"
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL, jobName="t-5b8f0c4e")
    assert observe(None, [], reported).patch["phase"] == "Succeeded"
    failed = status(phase="Running", stage="failed", trainingFailure=FAILED_BY_TRAINER, jobName="t-5b8f0c4e")
    assert observe(None, [], failed).patch["reason"] == "DatasetInvalid"


def test_a_pending_pod_is_not_running() -> None:
    """The bug: the Job's ``active`` counts Pending pods too; a pod pulling its image showed Running."""
    unscheduled = observe(job(active=1), [pod()], status(phase="Pending"))
    assert unscheduled.patch.get("phase", "Pending") == "Pending" and unscheduled.patch["message"].endswith("waiting for a node")
    assert "Scheduled" not in conditions_of(unscheduled.patch) and unscheduled.events == []
    bound = observe(job(active=1), [pod(scheduled={"status": "True"})], status(phase="Pending"))
    assert bound.patch["message"] == "the trainer pod is starting"
    assert conditions_of(bound.patch)["Scheduled"] == ("True", "Scheduled")
    assert observe(job(active=1, ready=1), [], status(phase="Pending")).patch["phase"] == "Running"


def test_a_cancel_after_the_trainer_succeeded_is_too_late() -> None:
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL)
    assert cancelled(reported).patch == {}
    done = observe(job([condition("Complete", "CompletionsReached")]), [pod("Succeeded")], reported)
    assert done.patch["phase"] == "Succeeded"


def test_a_running_trainings_next_attempt_keeps_it_running() -> None:
    """The bug: a retry's (or a preempted pod's replacement) Pending pod flapped Running → Pending → Running,
    with a second Started Event."""
    running = status(phase="Running", stage="training", currentEpoch=2, startTime="2026-01-01T00:00:00Z")
    pods = [pod("Failed", terminated={"reason": "Error", "exitCode": 1}), pod(scheduled={"status": "True"})]
    assert observe(job(active=1, failed=1), pods, running) == observe(job(active=1), [pod()], running)
    assert observe(job(active=1, failed=1), pods, running).patch == {}


def test_a_job_suspended_after_the_trainer_succeeded_still_succeeds() -> None:
    """The bug: a cancel racing the trainer's final report suspended the Job (its pod stopped) after the
    weights were stored; the training then stayed Pending/Queued for ever."""
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL, jobName="t-5b8f0c4e")
    result = observe(job(suspend=True), [], reported)
    assert result.patch["phase"] == "Succeeded" and result.events[0][:2] == ("Normal", "Succeeded")


def test_a_job_made_before_the_first_sync_is_never_made_again() -> None:
    """The operator crashed after making the Job, before writing jobName; the Job then went (TTL)."""
    reported = status(stage="training", currentEpoch=1)
    assert job_was_made(reported) and not job_was_made(status())
    assert observe(None, [], reported).patch["reason"] == "JobDeleted"


def test_a_training_being_deleted_is_not_concluded() -> None:
    """The bug: with foreground deletion the garbage collector removes the Job first; the sync then wrote
    Failed/JobDeleted and a Warning Event on a training being deleted."""
    class Gone:
        def get_job(self, namespace: str, name: str) -> None:
            return None

        def list_pods(self, namespace: str, uid: str) -> list[dict[str, Any]]:
            return []

    meta = {"name": "t", "namespace": "team-a", "uid": "5b8f0c4e-0000", "generation": 1}
    running = status(phase="Running", stage="training", jobName="t-5b8f0c4e")
    sync = Synchronizer(Gone())  # type: ignore[arg-type]
    assert sync.observe({"metadata": meta}, running, 1).patch["reason"] == "JobDeleted"
    deleting = {"metadata": {**meta, "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert sync.observe(deleting, running, 1).patch == {}


QUOTA = ('Error creating: pods "t-5b8f0c4e-" is forbidden: exceeded quota: gpus, requested: '
         'requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4')


def test_a_pod_the_api_server_refuses_says_why() -> None:
    """The gap: a quota-refused pod left only a FailedCreate Event on the Job; the training said "waiting"."""
    waiting = job(startTime="2026-01-01T00:00:00Z")
    result = observe(waiting, [], status(), QUOTA)
    assert result.patch["phase"] == "Pending" and result.patch["reason"] == "FailedCreate"
    assert "exceeded quota: gpus" in result.patch["message"] and "keeps retrying" in result.patch["message"]
    assert conditions_of(result.patch)["Succeeded"] == ("Unknown", "Pending")
    assert [(kind, reason) for kind, reason, _ in result.events] == [("Warning", "FailedCreate")]
    refused = after(status(), result.patch)
    assert observe(waiting, [], refused, QUOTA).patch == {}  # told once, not on every sync
    made = observe(job(active=1), [pod(scheduled={"status": "True"})], refused)  # the quota freed up
    assert made.patch["reason"] is None and "starting" in made.patch["message"]


def test_a_failed_create_is_read_only_for_a_job_that_should_have_a_pod() -> None:
    from yolo_operator.job_state import creation_may_fail
    assert creation_may_fail(job(), [])
    assert not creation_may_fail(job(), [pod()])
    assert not creation_may_fail(job(suspend=True), [])
    assert not creation_may_fail(job(active=1), [])
    assert not creation_may_fail(job([condition("Failed", "DeadlineExceeded")]), [])
    # an old FailedCreate Event, once a pod exists, says nothing
    assert observe(job(active=1), [pod()], status(phase="Pending"), QUOTA).patch.get("reason") is None


def test_a_deadline_passed_while_no_pod_could_be_made_keeps_the_cause() -> None:
    refused = status(phase="Pending", reason="FailedCreate", message=f"the Job controller cannot ...: {QUOTA}")
    result = observe(job([condition("Failed", "DeadlineExceeded")]), [], refused)
    assert result.patch["reason"] == "DeadlineExceeded"
    assert "no trainer pod could be made" in result.patch["message"] and "exceeded quota" in result.patch["message"]


def test_the_sync_reads_failed_create_events_only_when_a_pod_is_missing() -> None:
    class Quota:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def get_job(self, namespace: str, name: str) -> dict[str, Any]:
            return {**job(startTime="2026-01-01T00:00:00Z"), "metadata": {"name": name, "uid": "job-uid"}}

        def list_pods(self, namespace: str, uid: str) -> list[dict[str, Any]]:
            return []

        def failed_creations(self, namespace: str, job_uid: str) -> list[tuple[str, str]]:
            self.asked.append(job_uid)
            return [("2026-01-01T00:00:01Z", "Error creating: an older refusal"), ("2026-01-01T00:00:09Z", QUOTA)]

    meta = {"name": "t", "namespace": "team-a", "uid": "5b8f0c4e-0000", "generation": 1}
    gateway = Quota()
    found = Synchronizer(gateway).observe({"metadata": meta}, status(phase="Pending"), 1)  # type: ignore[arg-type]
    assert gateway.asked == ["job-uid"] and QUOTA in found.patch["message"]

    class Made(Quota):
        def list_pods(self, namespace: str, uid: str) -> list[dict[str, Any]]:
            return [pod(scheduled={"status": "True"})]

    made = Made()
    Synchronizer(made).observe({"metadata": meta}, status(phase="Pending"), 1)  # type: ignore[arg-type]
    assert made.asked == []  # a live pod: no Event is read


def test_a_retry_the_quota_refuses_says_why() -> None:
    """The bug: after a failed attempt its ended pod remains, so a refused retry (the GPUs taken meanwhile)
    left the training Running with no pod until its deadline."""
    from yolo_operator.job_state import creation_may_fail, latest_refusal

    failed = pod("Failed", terminated={"exitCode": 1, "reason": "Error"})  # made 2026-01-01T00:00:00Z
    retrying = job(failed=1, startTime="2026-01-01T00:00:00Z")
    assert creation_may_fail(retrying, [failed])
    refusal = latest_refusal([("2026-01-01T00:05:00Z", QUOTA)], [failed])
    result = observe(retrying, [failed], status(phase="Running", stage="training"), refusal)
    assert result.patch["phase"] == "Pending" and result.patch["reason"] == "FailedCreate"


def test_a_refusal_from_before_the_newest_pod_is_no_longer_news() -> None:
    from yolo_operator.job_state import latest_refusal

    made = pod("Failed")  # made 2026-01-01T00:00:00Z
    assert latest_refusal([("2025-12-31T23:59:00Z", QUOTA)], [made]) is None
    assert latest_refusal([("2025-12-31T23:59:00Z", "old"), ("2026-01-01T00:00:00.5Z", QUOTA)], [made]) == QUOTA
    assert latest_refusal([("2025-12-31T23:59:00Z", QUOTA)], []) == QUOTA  # no pod yet: every refusal counts
    assert latest_refusal([], []) is None


def test_a_deadline_after_the_final_report_is_recorded_not_a_failure() -> None:
    """The bug (reproduced on a real control plane): the Job's activeDeadlineSeconds expired between the
    trainer's final report and its pod's exit, and an answered success became Failed/DeadlineExceeded."""
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL, jobName="t-5b8f0c4e")
    result = observe(job([condition("Failed", "DeadlineExceeded")]), [pod("Failed")], reported)
    assert result.patch["phase"] == "Succeeded" and result.patch.get("reason") is None
    assert conditions_of(result.patch)["Succeeded"] == ("True", "Completed")
    assert conditions_of(result.patch)["JobComplete"] == ("False", "DeadlineExceeded")
    assert ("Warning", "JobFailedAfterSuccess") in [event[:2] for event in result.events]


def test_the_final_report_concludes_at_once_and_the_jobs_end_is_recorded_later() -> None:
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL, jobName="t-5b8f0c4e")
    now = observe(job(active=1), [pod("Running")], reported)
    assert now.patch["phase"] == "Succeeded"
    assert conditions_of(now.patch)["JobComplete"] == ("Unknown", "Finishing")
    succeeded = after(reported, now.patch)
    assert observe(job(active=1), [pod("Running")], succeeded).patch == {}
    late = observe(job([condition("Failed", "DeadlineExceeded")]), [pod("Failed")], succeeded)
    assert set(late.patch) == {"conditions"} and conditions_of(late.patch)["JobComplete"][0] == "False"
    assert conditions_of(late.patch)["Succeeded"] == ("True", "Completed")
    recorded = after(succeeded, late.patch)
    assert observe(job([condition("Failed", "DeadlineExceeded")]), [], recorded).patch == {}
    completed = observe(job([condition("Complete", "CompletionsReached")]), [], succeeded)
    assert conditions_of(completed.patch)["JobComplete"] == ("True", "Completed") and completed.events == []


def test_a_job_stopped_or_gone_after_the_success_is_recorded_as_such() -> None:
    """JobComplete never stays Unknown: a Job suspended by a late cancel never completes, and a Job removed
    by its own TTL before a sync saw it complete did not fail."""
    reported = status(phase="Running", stage="completed", finalMetrics=FINAL, jobName="t-5b8f0c4e")
    stopped = observe(job(suspend=True), [], reported)
    assert stopped.patch["phase"] == "Succeeded"
    assert conditions_of(stopped.patch)["JobComplete"] == ("False", "Suspended")
    waiting = after(reported, observe(job(active=1), [pod("Running")], reported).patch)
    gone = observe(None, [], waiting)
    assert conditions_of(gone.patch)["JobComplete"] == ("False", "JobDeleted") and gone.events == []
