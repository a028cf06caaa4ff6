"""The Kubernetes sink: a JSON merge patch on ``yolotrainings/<name>/status``.

The trainer's ServiceAccount may only get and patch the status of its own resource, so this is the one
call the trainer makes. Credentials come from the pod (in-cluster) or from KUBECONFIG.
"""

from typing import Any

from yolo_crd.kubeclient import load_api_client
from yolo_crd.names import GROUP, PLURAL, VERSION
from yolo_trainer.sinks import SinkError

# 409 (conflict), 429 (throttled), 5xx and auth errors right after the per-training Role was created
# (RBAC propagation) can succeed later; 400/404/422 cannot.
_RETRYABLE_STATUS = frozenset({401, 403, 408, 409, 429, 500, 502, 503, 504})


class KubernetesStatusSink:
    """Patches the status subresource of one YoloTraining."""

    def __init__(self, namespace: str, name: str, api_client: Any = None, timeout: float = 10.0) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client or load_api_client())
        self._namespace = namespace
        self._name = name
        self._timeout = timeout

    def send(self, patch: dict[str, Any]) -> None:
        """Send the status patch (wrapped in ``{"status": ...}``); classify errors as retryable or not."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self._api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self._namespace, PLURAL, self._name, {"status": patch},
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            raise SinkError(
                f"status patch of {self._namespace}/{self._name} answered {status} {exc.reason}",
                retryable=status in _RETRYABLE_STATUS or status == 0,
            ) from exc
        except (HTTPError, OSError) as exc:
            raise SinkError(f"API server unreachable: {exc}", retryable=True) from exc
