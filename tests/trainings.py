"""Helpers of the e2e suite (and of any test on a real API server): create a YoloTraining, read its status, find its Jobs."""

from typing import Any

from kubernetes import client

G, V, P = "yolo-operator.io", "v1alpha1", "yolotrainings"
SWEEPS = "yolosweeps"


def create(kube: client.ApiClient, namespace: str, name: str, annotations: dict[str, str] | None = None,
           **spec: Any) -> dict[str, Any]:
    """A YoloTraining (model yolov8n.yaml, 3 epochs unless told otherwise)."""
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloTraining",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 3, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, namespace, P, body))


def status(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The training's status (empty when it has none yet)."""
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, namespace, P, name)
    return dict(obj.get("status") or {})


def jobs_of(kube: client.ApiClient, namespace: str, uid: str) -> list[Any]:
    """The Jobs of one training, by its task id (never by its reusable name)."""
    return list(client.BatchV1Api(kube).list_namespaced_job(
        namespace, label_selector=f"yolo-operator.io/task-id={uid}").items)


def exists(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    """Whether a training of that name is there (a 404 is no; anything else raises)."""
    try:
        custom.get_namespaced_custom_object(G, V, namespace, P, name)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def create_sweep(kube: client.ApiClient, namespace: str, name: str, template: dict[str, Any],
                 **spec: Any) -> dict[str, Any]:
    """A YoloSweep over ``template`` (a YoloTraining spec: model yolov8n.yaml, data /data/d.yaml, 2 epochs unless
    given)."""
    body = {"apiVersion": f"{G}/{V}", "kind": "YoloSweep", "metadata": {"name": name},
            "spec": {"template": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 2, **template}, **spec}}
    return dict(client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, namespace, SWEEPS, body))


def sweep_status(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The sweep's status (empty when it has none yet)."""
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, namespace, SWEEPS, name)
    return dict(obj.get("status") or {})


def trials_of(kube: client.ApiClient, namespace: str, sweep: str) -> list[dict[str, Any]]:
    """The YoloTrainings labelled as trials of ``sweep``, by trial number."""
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        G, V, namespace, P, label_selector=f"yolo-operator.io/sweep={sweep}").get("items") or []
    return sorted(items, key=lambda t: int(t["metadata"]["labels"]["yolo-operator.io/trial"]))
