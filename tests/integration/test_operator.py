"""The real kopf operator against the emulated API server: Jobs, RBAC, status, Events, the lifecycle's edges.

Each lifecycle test names the bug it guards against (issue 11): a restart that rewound the stage, a cancel
before the first reconcile that was lost, a reused name that adopted the old Job, a timer's finalizer that
left deletions hanging, unretried event handlers, and observedGeneration that never moved.
"""

import socket
from typing import Any

import httpx
import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from apiserver import ApiServer
from waiting import eventually

G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"
NS = "team-a"
OPERATOR = ["run", "-m", "yolo_operator.handlers", "--standalone", "--all-namespaces"]


@pytest.fixture
def kube(operator_kube: client.ApiClient) -> client.ApiClient:
    """The client of the emulated API server with the environment the in-process operator reads."""
    return operator_kube


def create(kube: client.ApiClient, name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, NS, P, body))


def status_of(api_server: ApiServer, name: str) -> dict[str, Any]:
    obj = api_server.emulator.get(P, NS, name)
    return dict((obj or {}).get("status") or {})


def events_for(api_server: ApiServer, name: str) -> list[str]:
    return [e.get("reason", "") for e in api_server.emulator.find("events", NS)
            if (e.get("involvedObject") or {}).get("name") == name]


def handled(api_server: ApiServer, name: str) -> bool:
    """Whether kopf has finished handling the training's latest spec (it stores what it handled last, and
    keeps no progress of handlers still to run or retry)."""
    annotations = ((api_server.emulator.get(P, NS, name) or {}).get("metadata") or {}).get("annotations") or {}
    pending = [key for key in annotations if key.startswith(f"{G}/")
               and key not in (f"{G}/last-handled", f"{G}/kopf-managed", f"{G}/cancel")]
    return f"{G}/last-handled" in annotations and not pending


def jobs_of(api_server: ApiServer, training: dict[str, Any]) -> list[dict[str, Any]]:
    uid = training["metadata"]["uid"]
    return [j for j in api_server.emulator.find("jobs", NS)
            if j["metadata"]["labels"].get("yolo-operator.io/task-id") == uid]


def add_pod(kube: client.ApiClient, training: dict[str, Any], pod_status: dict[str, Any]) -> None:
    """Stand in for the Job controller and the scheduler: a trainer pod with the given status."""
    meta = training["metadata"]
    labels = {"yolo-operator.io/training": meta["name"], "yolo-operator.io/task-id": meta["uid"],
              "app.kubernetes.io/managed-by": "yolo-training-operator"}
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(NS, {"metadata": {"name": f"{meta['name']}-x1", "labels": labels},
                                    "spec": {"containers": [{"name": "trainer", "image": "registry.local/trainer:test"}]}})
    core.patch_namespaced_pod_status(f"{meta['name']}-x1", NS, {"status": pod_status})


def condition(status: dict[str, Any], kind: str) -> tuple[str, str] | None:
    found = next((c for c in status.get("conditions") or [] if c["type"] == kind), None)
    return None if found is None else (found["status"], found.get("reason", ""))


def test_create_builds_one_job_rbac_pending_status_and_an_event(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "shapes", gpus=1)
        eventually(lambda: status_of(api_server, "shapes").get("jobName"))
        eventually(lambda: handled(api_server, "shapes"))  # kopf is done with it: no reconcile is left to run
    assert runner.exit_code == 0, runner.output
    child = f"shapes-{training['metadata']['uid'][:8]}"
    [job] = api_server.emulator.find("jobs", NS)
    assert job["metadata"]["name"] == child
    assert job["metadata"]["ownerReferences"][0]["uid"] == training["metadata"]["uid"]
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.local/trainer:test"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for plural in ("serviceaccounts", "roles", "rolebindings"):
        assert [o["metadata"]["name"] for o in api_server.emulator.find(plural, NS)] == [child]
    status = status_of(api_server, "shapes")
    assert status["phase"] == "Pending" and "stage" not in status and status["jobName"] == child
    assert status["observedGeneration"] == 1 and condition(status, "Succeeded") == ("Unknown", "Pending")
    assert "JobCreated" in events_for(api_server, "shapes")
    assert not api_server.emulator.get(P, NS, "shapes")["metadata"].get("finalizers")  # type: ignore[index]


def test_pod_and_job_fate_is_mirrored_into_status(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "fate")
        [job] = eventually(lambda: jobs_of(api_server, training))
        add_pod(kube, training, {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]})
        eventually(lambda: status_of(api_server, "fate").get("reason") == "Unschedulable")
        assert "Insufficient nvidia.com/gpu" in status_of(api_server, "fate")["message"]
        client.BatchV1Api(kube).patch_namespaced_job_status(job["metadata"]["name"], NS, {"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Job was active longer"}]}})
        eventually(lambda: status_of(api_server, "fate").get("phase") == "Failed")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "fate")
    assert status["reason"] == "DeadlineExceeded" and status["completionTime"]
    assert condition(status, "Succeeded") == ("False", "DeadlineExceeded")
    assert {"Unschedulable", "DeadlineExceeded"} <= set(events_for(api_server, "fate"))


def test_operator_restart_neither_makes_a_second_job_nor_rewinds_the_stage(kube: client.ApiClient,
                                                                          api_server: ApiServer) -> None:
    """The bug: after a restart, a catch-all 'no active pod' branch turned stage training into scheduling."""
    with KopfRunner(OPERATOR):
        training = create(kube, "restart")
        eventually(lambda: status_of(api_server, "restart").get("jobName"))
    [job] = jobs_of(api_server, training)
    custom = client.CustomObjectsApi(kube)
    # while the operator is down: the first attempt failed (no active pod), the trainer had reported, the
    # spec changed (generation 2: suspended), so the restarted operator must reconcile this training
    client.BatchV1Api(kube).patch_namespaced_job_status(job["metadata"]["name"], NS, {"status": {"failed": 1}})
    custom.patch_namespaced_custom_object_status(G, V, NS, P, "restart", {"status": {"stage": "training",
                                                                                    "currentEpoch": 2}})
    custom.patch_namespaced_custom_object(G, V, NS, P, "restart", {"spec": {"suspend": True}})
    with KopfRunner(OPERATOR) as runner:
        eventually(lambda: status_of(api_server, "restart").get("observedGeneration") == 2)
    assert runner.exit_code == 0, runner.output
    assert len(api_server.emulator.find("jobs", NS)) == 1
    job_creates = [w.status for w in api_server.emulator.writes if w.plural == "jobs" and w.method == "POST"]
    assert job_creates[0] == 201 and set(job_creates[1:]) <= {409}  # every later reconcile found it there
    status = status_of(api_server, "restart")
    assert status["currentEpoch"] == 2 and status["stage"] == "training"


def test_invalid_spec_fails_permanently_without_a_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        create(kube, "bad", hyperparameters={"project": "/etc"})
        create(kube, "worse", gpus=1, device="cpu")
        eventually(lambda: status_of(api_server, "bad").get("phase") == status_of(api_server, "worse").get("phase")
                   == "Failed")
        eventually(lambda: handled(api_server, "bad") and handled(api_server, "worse"))  # no retry is left to run
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "bad")
    assert status["reason"] == "InvalidSpec" and "trainer chooses where outputs are written" in status["message"]
    assert "set gpus to 0" in status_of(api_server, "worse")["message"]
    assert api_server.emulator.find("jobs", NS) == []
    assert "InvalidSpec" in events_for(api_server, "bad")


def test_a_child_the_api_server_refuses_fails_the_training_at_once(kube: client.ApiClient,
                                                                  api_server: ApiServer) -> None:
    """The bug: a Job the API server refused as invalid (422) was retried by kopf for ever, Pending."""
    with KopfRunner(OPERATOR) as runner:
        api_server.emulator.fail(1, 422, method="POST", plural="jobs")
        create(kube, "refused")
        eventually(lambda: status_of(api_server, "refused").get("phase") == "Failed")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "refused")
    assert status["reason"] == "InvalidSpec" and "refused" in status["message"]
    assert [w.status for w in api_server.emulator.writes if w.plural == "jobs" and w.method == "POST"] == [422]


def test_a_job_deleted_while_the_operator_is_down_is_not_made_again(kube: client.ApiClient,
                                                                   api_server: ApiServer) -> None:
    """The bug: the restarted operator made a new Job for a training whose Job was gone (deleted by hand,
    or by its TTL), which trained again from scratch; with the operator up it stayed Running for ever."""
    with KopfRunner(OPERATOR):
        training = create(kube, "orphaned")
        eventually(lambda: status_of(api_server, "orphaned").get("jobName"))
    [job] = jobs_of(api_server, training)
    client.BatchV1Api(kube).delete_namespaced_job(job["metadata"]["name"], NS, propagation_policy="Background")
    with KopfRunner(OPERATOR) as runner:
        eventually(lambda: status_of(api_server, "orphaned").get("phase") == "Failed")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "orphaned")
    assert status["reason"] == "JobDeleted" and job["metadata"]["name"] in status["message"]
    assert jobs_of(api_server, training) == []
    assert [w.status for w in api_server.emulator.writes if w.plural == "jobs" and w.method == "POST"] == [201]


def test_deleting_the_training_removes_what_it_owns(kube: client.ApiClient, api_server: ApiServer) -> None:
    with KopfRunner(OPERATOR) as runner:
        create(kube, "gone")
        eventually(lambda: api_server.emulator.find("rolebindings", NS))
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, NS, P, "gone")
        eventually(lambda: api_server.emulator.get(P, NS, "gone") is None)
    assert runner.exit_code == 0, runner.output
    for plural in ("jobs", "serviceaccounts", "roles", "rolebindings"):
        eventually(lambda plural=plural: api_server.emulator.find(plural, NS) == [])  # the GC, a moment later


def test_deleting_works_with_no_operator_running(kube: client.ApiClient, api_server: ApiServer) -> None:
    """The bug: a timer put kopf's finalizer on every training, so after helm uninstall deletes hung."""
    with KopfRunner(OPERATOR) as runner:
        create(kube, "orphaned")
        legacy = create(kube, "legacy")  # created by an older operator: carries kopf's finalizer
        client.CustomObjectsApi(kube).patch_namespaced_custom_object(G, V, NS, P, "legacy", {
            "metadata": {"finalizers": ["kopf.zalando.org/KopfFinalizerMarker"]}})
        eventually(lambda: status_of(api_server, "orphaned").get("jobName") and jobs_of(api_server, legacy))
        eventually(lambda: not api_server.emulator.get(P, NS, "legacy")["metadata"].get("finalizers"))  # type: ignore[index]
    assert runner.exit_code == 0, runner.output
    for name in ("orphaned", "legacy"):
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(G, V, NS, P, name)
        assert api_server.emulator.get(P, NS, name) is None  # gone at once: no finalizer waits for anyone
    eventually(lambda: api_server.emulator.find("jobs", NS) == [])


def test_suspend_resume_and_cancel_act_on_the_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    custom, batch = client.CustomObjectsApi(kube), client.BatchV1Api(kube)
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "pause")
        [job] = eventually(lambda: jobs_of(api_server, training))
        name = job["metadata"]["name"]
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"suspend": True}})
        eventually(lambda: batch.read_namespaced_job(name, NS).spec.suspend is True)
        eventually(lambda: status_of(api_server, "pause").get("reason") == "Queued"
                   and status_of(api_server, "pause").get("observedGeneration") == 2)
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"suspend": False}})
        eventually(lambda: batch.read_namespaced_job(name, NS).spec.suspend is False)
        eventually(lambda: status_of(api_server, "pause").get("observedGeneration") == 3)
        with pytest.raises(client.ApiException) as refused:  # the spec is immutable but for suspend (CEL)
            custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {"spec": {"epochs": 50}})
        assert refused.value.status == 422 and "spec.epochs cannot change" in str(refused.value.body)
        custom.patch_namespaced_custom_object(G, V, NS, P, "pause", {
            "metadata": {"annotations": {"yolo-operator.io/cancel": "true"}}, "spec": {"suspend": True}})
        eventually(lambda: status_of(api_server, "pause").get("reason") == "Cancelled")
    assert runner.exit_code == 0, runner.output
    status = status_of(api_server, "pause")
    assert status["phase"] == "Failed" and status["message"] == "cancelled"
    assert status["observedGeneration"] == api_server.emulator.get(P, NS, "pause")["metadata"]["generation"]  # type: ignore[index]
    assert condition(status, "Succeeded") == ("False", "Cancelled")
    assert batch.read_namespaced_job(name, NS).spec.suspend is True
    assert {"Suspended", "Resumed", "Cancelled"} <= set(events_for(api_server, "pause"))


def test_cancel_before_the_first_reconcile_or_while_the_operator_is_down(kube: client.ApiClient,
                                                                        api_server: ApiServer) -> None:
    """The bug: POST then DELETE before the operator handled the create left the training Pending forever."""
    cancel = {"yolo-operator.io/cancel": "true"}
    early = create(kube, "early", annotations=cancel, suspend=True)  # the operator has never seen it
    with KopfRunner(OPERATOR):
        later = create(kube, "later")
        eventually(lambda: jobs_of(api_server, later))
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(G, V, NS, P, "later", {  # operator down
        "metadata": {"annotations": cancel}, "spec": {"suspend": True}})
    with KopfRunner(OPERATOR) as runner:
        api_server.emulator.fail(1, 500, method="POST", plural="jobs")  # the first reconcile fails: kopf retries
        retried = create(kube, "retried")
        eventually(lambda: [w for w in api_server.emulator.writes if w.plural == "jobs" and w.status == 500])
        client.CustomObjectsApi(kube).patch_namespaced_custom_object(G, V, NS, P, "retried", {
            "metadata": {"annotations": cancel}, "spec": {"suspend": True}})
        for name in ("early", "later", "retried"):
            eventually(lambda name=name: status_of(api_server, name).get("reason") == "Cancelled", timeout=30)
    assert runner.exit_code == 0, runner.output
    assert jobs_of(api_server, early) == jobs_of(api_server, retried) == []  # cancelled before anything started
    [job] = jobs_of(api_server, later)
    assert job["spec"]["suspend"] is True and status_of(api_server, "later")["phase"] == "Failed"


def test_a_reused_name_never_adopts_the_old_job(kube: client.ApiClient, api_server: ApiServer) -> None:
    """The bug: 409 on the Job create was taken as 'ours', so a new training adopted its predecessor's Job."""
    api_server.emulator.gc_delay = 5.0  # the old children linger while the new training is reconciled
    custom = client.CustomObjectsApi(kube)
    with KopfRunner(OPERATOR) as runner:
        old = create(kube, "reuse")
        eventually(lambda: jobs_of(api_server, old))
        custom.delete_namespaced_custom_object(G, V, NS, P, "reuse")
        new = create(kube, "reuse", epochs=7)
        [job] = eventually(lambda: jobs_of(api_server, new))
        assert jobs_of(api_server, old)  # still there: the garbage collector has not run yet
        eventually(lambda: status_of(api_server, "reuse").get("jobName") == job["metadata"]["name"])
    assert runner.exit_code == 0, runner.output
    assert job["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"]
    assert '"epochs":7' in next(e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
                                if e["name"] == "YOLO_TRAINER_SPEC")
    role = next(r for r in api_server.emulator.find("roles", NS) if r["metadata"]["name"] == job["metadata"]["name"])
    assert role["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"]


def test_event_driven_status_writes_are_retried_and_only_our_children_are_watched(
        kube: client.ApiClient, api_server: ApiServer) -> None:
    """The bugs: kopf never retries on.event handlers (a 5xx waited for the 5-minute resync), and labels=
    filtered on the client after every Pod and Job in the cluster had been streamed to the operator."""
    with KopfRunner(OPERATOR) as runner:
        training = create(kube, "retried")
        [job] = eventually(lambda: jobs_of(api_server, training))
        eventually(lambda: status_of(api_server, "retried").get("jobName"))
        api_server.emulator.fail(2, 503, method="PATCH", plural=P, subresource="status")
        api_server.emulator.fail(1, 409, method="PATCH", plural=P, subresource="status")
        client.BatchV1Api(kube).patch_namespaced_job_status(job["metadata"]["name"], NS, {"status": {"active": 1, "ready": 1}})
        eventually(lambda: status_of(api_server, "retried").get("phase") == "Running", timeout=30)
    assert runner.exit_code == 0, runner.output
    refused = [w.status for w in api_server.emulator.writes if w.plural == P and w.subresource == "status"]
    assert refused.count(503) == 2 and refused.count(409) >= 1
    watches = {plural: params for plural, params in api_server.emulator.watched if plural in ("jobs", "pods")}
    assert set(watches) == {"jobs", "pods"}
    for params in watches.values():
        assert params.get("labelSelector") == "app.kubernetes.io/managed-by=yolo-training-operator"


def test_operator_metrics_are_served_and_move(kube: client.ApiClient, api_server: ApiServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("YOLO_OPERATOR_METRICS_PORT", str(port))

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    with KopfRunner(OPERATOR) as runner:
        api_server.emulator.fail(1, 500, method="POST", plural="jobs")  # the first Job create is refused
        create(kube, "metered", gpus=2)
        eventually(lambda: status_of(api_server, "metered").get("jobName"))
        eventually(lambda: scrape().get(("yolo_operator_trainings", (("phase", "Pending"), ("reason", "")))) == 1)
        samples = scrape()
        assert samples[("yolo_operator_gpus_requested", (("phase", "Pending"),))] == 2
        assert samples[("yolo_operator_job_creation_failures_total", (("reason", "ServerError"),))] >= 1
        # every label a counter can take is there from the start (0 on a healthy operator, never "No data");
        # the registry lives as long as the process, so earlier tests may have counted some
        assert ("yolo_operator_job_creation_failures_total", (("reason", "Forbidden"),)) in samples
        assert ("yolo_operator_sync_errors_total", (("handler", "sync"),)) in samples
        assert samples[("process_resident_memory_bytes", ())] > 0
        assert samples[("yolo_operator_reconcile_duration_seconds_count", (("handler", "reconcile"),))] >= 2
        api_server.call(api_server.emulator.patch_status(P, NS, "metered", {"phase": "Running"}))
        eventually(lambda: scrape().get(("yolo_operator_trainings", (("phase", "Running"), ("reason", "")))) == 1)
    assert runner.exit_code == 0, runner.output
