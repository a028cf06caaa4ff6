"""Every Kubernetes call the operator makes, in one small gateway (and the list of permissions it needs).

Creates are idempotent (409 AlreadyExists means the child is already there); reads return plain dicts
(camelCase, as on the wire) or None for 404; anything else raises, so kopf retries the handler.
"""

from typing import Any, Final

from yolo_crd.names import GROUP, LABEL_NAME, PLURAL, VERSION

#: (apiGroup, resource, verbs) of each call below: the source of the operator's RBAC in the chart.
PERMISSIONS: Final = (
    (GROUP, PLURAL, ("get", "list", "watch", "patch")),
    (GROUP, f"{PLURAL}/status", ("get", "patch")),
    ("batch", "jobs", ("get", "list", "watch", "create", "patch")),
    ("", "pods", ("get", "list", "watch")),
    ("", "serviceaccounts", ("create",)),
    ("rbac.authorization.k8s.io", "roles", ("create",)),
    ("rbac.authorization.k8s.io", "rolebindings", ("create",)),
    ("", "events", ("create",)),
    ("events.k8s.io", "events", ("create",)),
)


class KubeGateway:
    """The operator's API-server calls."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._client = api_client
        self._custom = client.CustomObjectsApi(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)

    def _dict(self, obj: Any) -> dict[str, Any]:
        return dict(self._client.sanitize_for_serialization(obj))

    def create(self, body: dict[str, Any]) -> bool:
        """Create a child object; False when it already exists (reconciling twice creates nothing twice)."""
        from kubernetes.client.exceptions import ApiException

        namespace, kind = body["metadata"]["namespace"], body["kind"]
        create = {"Job": self._batch.create_namespaced_job,
                  "ServiceAccount": self._core.create_namespaced_service_account,
                  "Role": self._rbac.create_namespaced_role,
                  "RoleBinding": self._rbac.create_namespaced_role_binding}[kind]
        try:
            create(namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def get_training(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One YoloTraining, or None when it is gone."""
        return self._read(lambda: self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One Job, or None."""
        return self._read(lambda: self._dict(self._batch.read_namespaced_job(name, namespace)))

    def list_pods(self, namespace: str, training: str) -> list[dict[str, Any]]:
        """The trainer pods of a training, oldest first."""
        pods = self._core.list_namespaced_pod(namespace, label_selector=f"{LABEL_NAME}={training}").items
        found = [self._dict(pod) for pod in pods]
        return sorted(found, key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp") or ""))

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch the operator's status fields."""
        self._custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": patch},
                                                           _content_type="application/merge-patch+json")

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch a Job (suspend or resume it)."""
        self._batch.patch_namespaced_job(name, namespace, patch, _content_type="application/merge-patch+json")

    @staticmethod
    def _read(call: Any) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(call())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
