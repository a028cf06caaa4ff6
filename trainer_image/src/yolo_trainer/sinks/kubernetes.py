"""The Kubernetes sink: a JSON merge patch on ``yolotrainings/<name>/status``, for this training only.

The trainer's ServiceAccount may only get and patch the status of its own resource, so these are the only
calls the trainer makes. Credentials come from the pod (in-cluster) or from KUBECONFIG.

A name is not an identity: a training can be deleted and another created with the same name while this
trainer is still running (its pod is terminating, or its Job lingers until garbage collection). The API
server ignores ``metadata.uid`` in a patch of the status subresource, so the uid is enforced with a
``resourceVersion`` precondition instead: every patch names the version of the object it last saw, and
a version is only ever taken from an object whose uid was checked. A replaced resource makes the patch
fail with 409; the re-read then sees the other uid, and reporting stops with a non-retryable error.
"""

from typing import Any

from yolo_crd.names import GROUP, PLURAL, VERSION
from yolo_io.kubeclient import load_api_client
from yolo_trainer.sinks import SinkError

# 429 (throttled), 5xx and auth errors right after the per-training Role was created (RBAC propagation)
# can succeed later; 400/404/422 cannot. 409 is handled here: re-read and try again.
_RETRYABLE_STATUS = frozenset({401, 403, 408, 409, 429, 500, 502, 503, 504})
_CONFLICT_ATTEMPTS = 3


class KubernetesStatusSink:
    """Patches the status subresource of one YoloTraining, identified by namespace, name and (if known) uid."""

    def __init__(self, namespace: str, name: str, uid: str | None = None, api_client: Any = None,
                 timeout: float = 10.0) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client or load_api_client())
        self._namespace = namespace
        self._name = name
        self._uid = uid
        self._timeout = timeout
        self._version: str | None = None  # resourceVersion of our own resource, last seen

    def send(self, patch: dict[str, Any]) -> None:
        """Send the status patch (wrapped in ``{"status": ...}``); classify errors as retryable or not."""
        from kubernetes.client.exceptions import ApiException

        for _ in range(_CONFLICT_ATTEMPTS):
            body: dict[str, Any] = {"status": patch}
            if self._uid is not None:
                if self._version is None:
                    self._version = self._read_version()
                body["metadata"] = {"resourceVersion": self._version}
            try:
                updated = self._call(self._api.patch_namespaced_custom_object_status, body,
                                     _content_type="application/merge-patch+json")
            except ApiException as exc:
                if exc.status == 409 and self._uid is not None:
                    self._version = None  # someone else wrote (or the resource was replaced): read again
                    continue
                raise self._error(exc) from exc
            self._version = str(((updated or {}).get("metadata") or {}).get("resourceVersion") or "") or None
            return
        raise SinkError(f"status patch of {self._where()} kept conflicting with other writers", retryable=True)

    def _read_version(self) -> str:
        """The resourceVersion of the resource, once its uid is ours; a different uid stops reporting."""
        from kubernetes.client.exceptions import ApiException

        try:
            current = self._call(self._api.get_namespaced_custom_object_status)
        except ApiException as exc:
            raise self._error(exc) from exc
        meta = current.get("metadata") or {}
        if meta.get("uid") != self._uid:
            raise SinkError(f"{self._where()} is now another training (uid {meta.get('uid')}, this trainer reports "
                            f"for {self._uid}): the status is not ours to write", retryable=False)
        return str(meta.get("resourceVersion"))

    def _call(self, method: Any, *body: Any, **kwargs: Any) -> Any:
        from urllib3.exceptions import HTTPError

        try:
            return method(GROUP, VERSION, self._namespace, PLURAL, self._name, *body,
                          _request_timeout=self._timeout, **kwargs)
        except (HTTPError, OSError) as exc:
            raise SinkError(f"API server unreachable: {exc}", retryable=True) from exc

    def _error(self, exc: Any) -> SinkError:
        status = int(exc.status or 0)
        detail = f": {exc.body}"[:500] if status in (400, 422) and exc.body else ""
        return SinkError(f"status patch of {self._where()} answered {status} {exc.reason}{detail}",
                         retryable=status in _RETRYABLE_STATUS or status == 0)

    def _where(self) -> str:
        return f"{self._namespace}/{self._name}"
