"""Every Kubernetes call the operator makes, in one small gateway (and the list of permissions it needs).

Creates are idempotent: 409 AlreadyExists means the child is already there, and for the Job the owner
is checked before it is taken as ours. Status writes carry the operator's field ownership check and a
``resourceVersion`` precondition (409 when another writer got there first: the caller re-reads and
recomputes). Reads return plain dicts (camelCase, as on the wire) or None for 404; anything else raises.
"""

import logging
import socket
from typing import Any, Final

from yolo_crd import ownership
from yolo_crd.names import API_VERSION, GROUP, KIND, LABEL_TASK_ID, MANAGED_BY, PLURAL, SWEEP_PLURAL, VERSION
from yolo_crd.status import utc_now

log = logging.getLogger(__name__)

#: (apiGroup, resource, verbs) of each call below and of :mod:`yolo_operator.sweep_gateway`: the source of the
#: operator's RBAC in the chart. ``create`` on trainings: a sweep's trials.
PERMISSIONS: Final = (
    (GROUP, PLURAL, ("get", "list", "watch", "create", "patch", "delete")),
    (GROUP, SWEEP_PLURAL, ("get", "list", "watch", "patch")),  # patch: kopf's annotations (progress, diff base)
    (GROUP, f"{SWEEP_PLURAL}/status", ("patch",)),
    (GROUP, f"{PLURAL}/status", ("get", "patch")),  # get: granted to each trainer's Role (RBAC grants only what
    # the granter holds)
    ("batch", "jobs", ("get", "list", "watch", "create", "patch")),
    ("", "pods", ("get", "list", "watch")),
    ("", "serviceaccounts", ("create",)),
    ("rbac.authorization.k8s.io", "roles", ("create",)),
    ("rbac.authorization.k8s.io", "rolebindings", ("create",)),
    ("", "events", ("create", "list", "watch")),  # kopf posts core v1 Events too
)


class NotOurs(Exception):
    """A child with the name we need exists but belongs to another owner."""


def controlled_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj``'s controller (its controlling ownerReference) is the object with ``uid``."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {ref.get("uid") for ref in references if ref.get("controller")} == {uid}


class KubeGateway:
    """The operator's API-server calls."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._client = api_client
        self.api_client = api_client  # shared with the sweep controller's gateway
        self._custom = client.CustomObjectsApi(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._rbac = client.RbacAuthorizationV1Api(api_client)
        self._instance = socket.gethostname()

    def _dict(self, obj: Any) -> dict[str, Any]:
        return dict(self._client.sanitize_for_serialization(obj))

    def create(self, body: dict[str, Any]) -> bool:
        """Create a child; False when it already exists and is ours. A Job owned by another is :class:`NotOurs`."""
        from kubernetes.client.exceptions import ApiException

        meta, kind = body["metadata"], body["kind"]
        create = {"Job": self._batch.create_namespaced_job,
                  "ServiceAccount": self._core.create_namespaced_service_account,
                  "Role": self._rbac.create_namespaced_role,
                  "RoleBinding": self._rbac.create_namespaced_role_binding}[kind]
        try:
            create(meta["namespace"], body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if kind == "Job" and not controlled_by(self.get_job(meta["namespace"], meta["name"]) or {},
                                                   meta["ownerReferences"][0]["uid"]):
                raise NotOurs(f"Job {meta['name']} exists and is not owned by this training") from exc
            return False
        return True

    def get_training(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One YoloTraining, or None when it is gone."""
        return self._read(lambda: self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))

    def find_training(self, namespace: str, uid: str) -> dict[str, Any] | None:
        """The YoloTraining of one namespace whose uid (task id) is ``uid``, or None (by its task-id label)."""
        listing = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             label_selector=f"{LABEL_TASK_ID}={uid}")
        return next((dict(item) for item in listing.get("items") or []
                     if (item.get("metadata") or {}).get("uid") == uid), None)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One Job, or None."""
        return self._read(lambda: self._dict(self._batch.read_namespaced_job(name, namespace)))

    def list_pods(self, namespace: str, task_id: str) -> list[dict[str, Any]]:
        """The trainer pods of one training (by its uid, never by a reusable name), oldest first."""
        pods = self._core.list_namespaced_pod(namespace, label_selector=f"{LABEL_TASK_ID}={task_id}").items
        found = [self._dict(pod) for pod in pods]
        return sorted(found, key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp") or ""))

    def failed_creations(self, namespace: str, job_uid: str) -> list[tuple[str, str]]:
        """The Job controller's ``FailedCreate`` Events on one Job (a pod it could not make: a ResourceQuota,
        a LimitRange, an admission policy), as (time, message), the latest last."""
        selector = f"involvedObject.uid={job_uid},reason=FailedCreate"
        events = [self._dict(e) for e in self._core.list_namespaced_event(namespace, field_selector=selector).items]
        found = [(str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""),
                  str(e.get("message") or "")) for e in events]
        return sorted(found)

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str) -> None:
        """Merge-patch operator-owned status fields, if the object is still at ``resource_version`` (else 409)."""
        ownership.check("operator", patch)
        body = {"metadata": {"resourceVersion": resource_version}, "status": patch}
        self._custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, body,
                                                           _content_type="application/merge-patch+json")

    def delete_training(self, namespace: str, name: str, uid: str) -> bool:
        """Delete the training with ``uid`` (a precondition: never a new one of the same name), its children
        following in the background. False when it is already gone or is another training now."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid),
                                         propagation_policy="Background")
        try:
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body=options)
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        return True

    def label_training(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Merge labels into a training (its task id, by which any API replica can look it up)."""
        self._custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                    {"metadata": {"labels": labels}})

    def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch a Job (suspend or resume it)."""
        self._batch.patch_namespaced_job(name, namespace, patch, _content_type="application/merge-patch+json")

    def post_event(self, training: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """Tell the story in ``kubectl describe yt``; a failure to post is logged, never fatal to a sync."""
        meta = training["metadata"]
        now = utc_now()
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "type": kind, "reason": reason, "message": message[:1024], "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "source": {"component": MANAGED_BY},
            "reportingComponent": MANAGED_BY, "reportingInstance": self._instance,
        }
        try:
            self._core.create_namespaced_event(meta["namespace"], event)
        except Exception as exc:  # Events are a courtesy: the status already says it
            log.warning("could not post Event %s for %s/%s: %s", reason, meta["namespace"], meta["name"], exc)

    @staticmethod
    def _read(call: Any) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(call())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
