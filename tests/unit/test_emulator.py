"""The emulated API server keeps the API semantics our components rely on (see tests/emulator.py)."""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from apiserver import ApiServer
from waiting import eventually

G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"


@pytest.fixture
def api(api_server: ApiServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(str(kubeconfig)) as api_client:
        yield api_client


def body(name: str = "", generate: str = "", **spec: Any) -> dict[str, Any]:
    meta = {"name": name} if name else {"generateName": generate}
    return {"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": meta,
            "spec": {"model": "m.yaml", "data": "d.yaml", **spec}, "status": {"phase": "Hacked"}}


def test_create_sets_server_fields_and_drops_status(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(G, V, "team-a", P, body(generate="train-"))
    meta = created["metadata"]
    assert meta["name"].startswith("train-") and len(meta["name"]) == 11
    assert meta["namespace"] == "team-a" and meta["generation"] == 1 and len(meta["uid"]) == 36
    assert int(meta["resourceVersion"]) > 0 and meta["creationTimestamp"].endswith("Z")
    assert "status" not in created
    with pytest.raises(ApiException) as conflict:
        custom.create_namespaced_custom_object(G, V, "team-a", P, body(name=meta["name"]))
    assert conflict.value.status == 409


def test_status_subresource_is_separate_and_generation_follows_spec(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="t"))
    custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"status": {"phase": "X"}, "metadata": {"labels": {"a": "b"}}})
    obj = custom.get_namespaced_custom_object(G, V, "ns", P, "t")
    assert "status" not in obj and obj["metadata"]["generation"] == 1 and obj["metadata"]["labels"] == {"a": "b"}
    custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": {"stage": "training"}, "spec": {"epochs": 9}},
                                                 _content_type="application/merge-patch+json")
    obj = custom.get_namespaced_custom_object(G, V, "ns", P, "t")
    assert obj["status"] == {"stage": "training"} and obj["metadata"]["generation"] == 1
    assert obj["spec"]["epochs"] == 100  # the schema's default, not the 9 sent to the status subresource
    custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"spec": {"suspend": True}})  # the one mutable field
    assert custom.get_namespaced_custom_object(G, V, "ns", P, "t")["metadata"]["generation"] == 2


def test_stale_resource_version_conflicts(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(G, V, "ns", P, body(name="t"))
    stale = created["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(ApiException) as conflict:
        custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"metadata": {"resourceVersion": stale, "labels": {"x": "2"}}})
    assert conflict.value.status == 409


def test_finalizers_block_deletion_and_owners_cascade(api_server: ApiServer, api: client.ApiClient) -> None:
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    owner = custom.create_namespaced_custom_object(G, V, "ns", P, {**body(name="t"), "metadata": {"name": "t", "finalizers": ["x/y"]}})
    ref = {"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "name": "t", "uid": owner["metadata"]["uid"]}
    job_spec = {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}}
    batch.create_namespaced_job("ns", {"metadata": {"name": "j", "ownerReferences": [ref], "labels": {"app": "t"}},
                                       "spec": job_spec})
    batch.create_namespaced_job("ns", {"metadata": {"name": "other", "labels": {"app": "u"}}, "spec": job_spec})
    assert [j.metadata.name for j in batch.list_namespaced_job("ns", label_selector="app=t").items] == ["j"]
    assert [j.metadata.name for j in batch.list_namespaced_job("ns", label_selector="app!=t").items] == ["other"]
    custom.delete_namespaced_custom_object(G, V, "ns", P, "t")
    assert api_server.emulator.get(P, "ns", "t")["metadata"]["deletionTimestamp"]  # type: ignore[index]
    custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"metadata": {"finalizers": None}})
    assert api_server.emulator.get(P, "ns", "t") is None
    assert sorted(j["metadata"]["name"] for j in api_server.emulator.find("jobs")) == ["j", "other"]  # GC is async
    eventually(lambda: [j["metadata"]["name"] for j in api_server.emulator.find("jobs")] == ["other"])


def test_every_write_is_pruned_defaulted_and_validated_against_the_crd(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(G, V, "ns", P, {**body(name="t"), "spec": {
        "model": "m.yaml", "data": "d.yaml", "typo": 1}})
    assert "typo" not in created["spec"] and created["spec"]["imgsz"] == 640  # pruned, defaulted
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object(G, V, "ns", P, body(name="u", epochs=0))
    assert invalid.value.status == 422 and "spec.epochs" in invalid.value.body
    for bad in ({"progress": 133}, {"stage": "queued"}, {"trainingFailure": {"reason": "X"}},
                {"lastUpdateTime": "yesterday"}):
        with pytest.raises(ApiException) as refused:
            custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": bad},
                                                         _content_type="application/merge-patch+json")
        assert refused.value.status == 422, bad
    updated = custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": {"stage": "training",
                                                                                           "undeclared": 1}},
                                                           _content_type="application/merge-patch+json")
    assert updated["status"] == {"stage": "training"}


def test_a_finished_phase_cannot_change_cel_transition_rule(api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="t"))

    def phase(value: str | None) -> None:
        custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": {"phase": value}},
                                                     _content_type="application/merge-patch+json")

    phase("Running")
    phase("Failed")
    for back in ("Running", "Succeeded", None):
        with pytest.raises(ApiException) as refused:
            phase(back)
        assert refused.value.status == 422 and "cannot change phase" in refused.value.body
    phase("Failed")  # unchanged is fine


def test_the_status_subresource_ignores_metadata_but_the_main_resource_refuses_a_new_uid(api: client.ApiClient) -> None:
    """As kube-apiserver: a uid in a status patch is silently ignored, so it is no precondition there."""
    custom = client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(G, V, "ns", P, body(name="t"))
    updated = custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {
        "metadata": {"uid": "someone-else", "labels": {"x": "y"}}, "status": {"stage": "training"}},
        _content_type="application/merge-patch+json")
    assert updated["metadata"]["uid"] == created["metadata"]["uid"] and "labels" not in updated["metadata"]
    with pytest.raises(ApiException) as immutable:
        custom.patch_namespaced_custom_object(G, V, "ns", P, "t", {"metadata": {"uid": "someone-else"}})
    assert immutable.value.status == 422


def test_watch_bookmarks_when_asked(api_server: ApiServer, api: client.ApiClient) -> None:
    api_server.emulator.bookmark_interval = 0.2
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="a"))
    since = custom.list_cluster_custom_object(G, V, P)["metadata"]["resourceVersion"]
    response = custom.list_cluster_custom_object(G, V, P, watch=True, resource_version=since, timeout_seconds=3,
                                                 allow_watch_bookmarks=True, _preload_content=False)
    custom.patch_namespaced_custom_object_status(G, V, "ns", P, "a", {"status": {"stage": "training"}})
    first, second = json.loads(response.readline()), json.loads(response.readline())
    response.close()
    assert first["type"] == "MODIFIED"
    assert second["type"] == "BOOKMARK" and second["object"]["kind"] == "YoloTraining"
    assert int(second["object"]["metadata"]["resourceVersion"]) >= int(first["object"]["metadata"]["resourceVersion"])
    assert ("yolotrainings", "true") in [(plural, params.get("allowWatchBookmarks"))
                                         for plural, params in api_server.emulator.watched]


def test_watch_streams_changes_resumes_and_answers_410_when_compacted(api_server: ApiServer, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="a"))
    listing = custom.list_cluster_custom_object(G, V, P)
    since = listing["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []

    def follow() -> None:
        stream = watch.Watch().stream(custom.list_cluster_custom_object, G, V, P, resource_version=since, timeout_seconds=5)
        for event in stream:
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if len(events) == 3:
                return

    thread = threading.Thread(target=follow)
    thread.start()
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="b"))
    custom.patch_namespaced_custom_object_status(G, V, "ns", P, "b", {"status": {"stage": "training"}})
    custom.delete_namespaced_custom_object(G, V, "ns", P, "a")
    thread.join(timeout=10)
    assert events == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]

    api_server.emulator.compact()
    response = custom.list_cluster_custom_object(G, V, P, watch=True, resource_version=since, timeout_seconds=2,
                                                 _preload_content=False)
    first = json.loads(response.readline())
    assert first["type"] == "ERROR" and first["object"]["code"] == 410


def test_injected_faults_answer_then_clear(api_server: ApiServer, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(G, V, "ns", P, body(name="t"))
    api_server.emulator.fail(2, 503, method="PATCH", subresource="status")
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": {"stage": "training"}})
        assert failed.value.status == 503
    custom.patch_namespaced_custom_object_status(G, V, "ns", P, "t", {"status": {"stage": "training"}})
    assert [w.status for w in api_server.emulator.writes if w.subresource == "status"] == [503, 503, 200]


def test_field_selectors_only_on_the_labels_the_real_server_indexes(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as refused:
        core.list_namespaced_pod("default", field_selector="spec.containers.image=x")
    assert refused.value.status == 400 and "not a known field selector" in refused.value.body
    with pytest.raises(ApiException):
        core.list_namespaced_event("default", field_selector="message=x")
    core.create_namespaced_event("default", {"metadata": {"name": "j.1"}, "reason": "FailedCreate", "type": "Warning",
                                             "involvedObject": {"kind": "Job", "name": "j", "uid": "u1"},
                                             "source": {"component": "job-controller"}, "message": "m"})
    found = core.list_namespaced_event("default", field_selector="involvedObject.uid=u1,reason=FailedCreate,"
                                                                 "source=job-controller").items
    assert [e.metadata.name for e in found] == ["j.1"]
    assert not core.list_namespaced_event("default", field_selector="reason!=FailedCreate").items


def test_a_resource_quota_refuses_pods_as_kube_apiserver_does(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    hard = {"requests.nvidia.com/gpu": "1"}
    core.create_namespaced_resource_quota("default", {"metadata": {"name": "gpus"}, "spec": {"hard": hard}})
    gpu_pod = {"metadata": {"generateName": "train-"}, "spec": {"containers": [
        {"name": "t", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    with pytest.raises(ApiException) as unknown:  # the quota controller has not written its status yet
        core.create_namespaced_pod("default", gpu_pod)
    assert unknown.value.status == 403 and "status unknown for quota: gpus" in unknown.value.body
    core.patch_namespaced_resource_quota_status("gpus", "default", {"status": {"hard": hard, "used": {}}})
    core.create_namespaced_pod("default", gpu_pod)  # within the quota (a request defaults to the limit)
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod("default", gpu_pod)
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        'pods "train-" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1, '
        "used: requests.nvidia.com/gpu=1, limited: requests.nvidia.com/gpu=1")
    core.create_namespaced_pod("default", {"metadata": {"name": "cpu-only"},
                                           "spec": {"containers": [{"name": "t", "image": "i"}]}})  # not counted


def test_a_quota_on_cpu_refuses_a_pod_that_does_not_say_its_cpu(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    hard = {"requests.cpu": "4"}
    core.create_namespaced_resource_quota("default", {"metadata": {"name": "compute"}, "spec": {"hard": hard}})
    core.patch_namespaced_resource_quota_status("compute", "default", {"status": {"hard": hard}})
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "trainer", "image": "i"}]}})
    assert json.loads(refused.value.body)["message"] == (
        'pods "p" is forbidden: failed quota: compute: must specify requests.cpu for: trainer')
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "trainer", "image": "i", "resources": {"limits": {"cpu": "2"}}}]}})  # a request defaults to it
