"""Every Kubernetes call the sweep controller makes: read a sweep, list and create its trials, annotate a trial
(cancel, early stop), write the sweep's status. Its permissions are in :data:`yolo_operator.gateway.PERMISSIONS`.

Creating a trial is idempotent: its name is deterministic, so a 409 AlreadyExists means the trial was made
before (an operator that restarted between the create and the status write); it is a success when the
existing training is controlled by this sweep, and :class:`TrialTaken` when something else holds the name.
"""

from typing import Any

from yolo_crd.names import GROUP, LABEL_SWEEP, PLURAL, SWEEP_PLURAL, VERSION
from yolo_operator.gateway import controlled_by


class TrialTaken(Exception):
    """A trial's name is held by a YoloTraining this sweep does not control."""


class SweepGateway:
    """The sweep controller's API-server calls; reads return plain dicts, or None for a 404."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._custom = client.CustomObjectsApi(api_client)
        self.calls = 0  # API calls made (bench/sweep_cost.py reads it)

    def get_sweep(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One YoloSweep, or None when it is gone."""
        from kubernetes.client.exceptions import ApiException

        self.calls += 1
        try:
            return dict(self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SWEEP_PLURAL, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_trials(self, namespace: str, sweep: str, uid: str) -> list[dict[str, Any]]:
        """The YoloTrainings this sweep controls (by its label, then its uid: never a namesake's)."""
        self.calls += 1
        listing = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             label_selector=f"{LABEL_SWEEP}={sweep}")
        return [dict(item) for item in listing.get("items") or [] if controlled_by(dict(item), uid)]

    def create_trial(self, body: dict[str, Any]) -> bool:
        """Create a trial; False when this sweep's trial of that number exists already."""
        from kubernetes.client.exceptions import ApiException

        meta = body["metadata"]
        self.calls += 1
        try:
            self._custom.create_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.calls += 1
            existing = self._custom.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL,
                                                                 meta["name"])
            if not controlled_by(dict(existing), meta["ownerReferences"][0]["uid"]):
                raise TrialTaken(f"YoloTraining {meta['name']} exists and is not a trial of this sweep") from exc
            return False
        return True

    def stop_trial(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Stop a trial as the API's cancel does: its annotation (cancel, or early stop with the reason) and
        ``spec.suspend`` (the change the training's handler reacts to); a trial that is gone needs nothing."""
        from kubernetes.client.exceptions import ApiException

        self.calls += 1
        try:
            self._custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                        {"metadata": {"annotations": annotations},
                                                         "spec": {"suspend": True}})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_sweep_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch the sweep's status (the operator is its only writer)."""
        self.calls += 1
        self._custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, SWEEP_PLURAL, name,
                                                           {"status": patch},
                                                           _content_type="application/merge-patch+json")
