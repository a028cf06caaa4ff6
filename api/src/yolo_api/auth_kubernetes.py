"""``auth=kubernetes``: delegate to the cluster (TokenReview, then SubjectAccessReview), with a cache.

A user's token is reviewed by the API server; each action is then asked of the cluster's authorizer for
that user, their groups and extra attributes, on ``yolotrainings`` in the task's namespace. So the HTTP API
grants exactly what ``kubectl`` would, and RBAC stays the one place where rights are kept.

Reviews run in a worker thread (the kubernetes client blocks) and are cached. When the API server cannot
be reached, a decision it gave in the last ``STALE_SECONDS`` still holds (pollers keep their answers
through a control-plane blip, like the status cache itself); a decision never made is answered 503, never
an allow.
"""

import asyncio
import logging
from typing import Any

from yolo_api.auth import GET, METRICS, Principal, TtlCache, token_key
from yolo_api.errors import ApiError
from yolo_crd.names import GROUP, PLURAL

log = logging.getLogger(__name__)

STALE_SECONDS = 600.0

#: (apiGroup, resource, verbs) of the calls below, for the API's ClusterRole in the chart.
PERMISSIONS = (("authentication.k8s.io", "tokenreviews", ("create",)),
               ("authorization.k8s.io", "subjectaccessreviews", ("create",)))


def access_review(who: Principal, action: str, namespace: str | None) -> dict[str, Any]:
    """The SubjectAccessReview body for one action (pure: unit-tested)."""
    spec: dict[str, Any] = {"user": who.name, "groups": list(who.groups), "uid": who.uid or None,
                            "extra": who.extra or None}
    if action == METRICS:
        spec["nonResourceAttributes"] = {"path": "/metrics", "verb": GET}
    else:
        spec["resourceAttributes"] = {"group": GROUP, "resource": PLURAL, "verb": action,
                                      "namespace": namespace or ""}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {k: v for k, v in spec.items() if v is not None}}


def unavailable(what: str) -> ApiError:
    """503: the cluster could not be asked; the client should retry."""
    return ApiError(503, "unavailable", {}, detail=f"the cluster's {what} did not answer; retry shortly")


class KubernetesAuth:
    """See the module docstring."""

    def __init__(self, api_client: Any, cache_seconds: float = 60.0) -> None:
        from kubernetes import client

        self._authn = client.AuthenticationV1Api(api_client)
        self._authz = client.AuthorizationV1Api(api_client)
        self.ttl = cache_seconds
        self._principals = TtlCache()
        self._decisions = TtlCache()
        self.reviews = 0  # TokenReviews + SubjectAccessReviews sent (for tests and metrics)

    async def authenticate(self, token: str | None) -> Principal | None:
        """The user the cluster says the token belongs to, or None."""
        if token is None:
            return None
        key = token_key(token)
        cached = self._principals.get(key)
        if cached is not None:
            return cached or None  # False: a cached rejection
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            status = await self._call(self._authn.create_token_review, body, "TokenReview")
        except ApiError:
            stale = self._principals.get(key, stale_for=STALE_SECONDS)
            if stale is None:
                raise
            return stale or None
        user = status.get("user") or {}
        who = Principal(name=user.get("username", ""), key=key, groups=tuple(user.get("groups") or ()),
                        uid=user.get("uid") or "", extra=dict(user.get("extra") or {}))
        authenticated = bool(status.get("authenticated")) and bool(who.name)
        if not authenticated and status.get("error"):
            log.info("token rejected by the cluster: %s", status["error"])
        self._principals.put(key, who if authenticated else False, self.ttl if authenticated else self.ttl / 10)
        return who if authenticated else None

    async def allowed(self, who: Principal, action: str, namespace: str | None) -> bool:
        """The cluster authorizer's decision for ``who`` (cached)."""
        cache_key = (who.key, action, namespace)
        cached = self._decisions.get(cache_key)
        if cached is not None:
            return bool(cached)
        try:
            status = await self._call(self._authz.create_subject_access_review,
                                      access_review(who, action, namespace), "SubjectAccessReview")
        except ApiError:
            stale = self._decisions.get(cache_key, stale_for=STALE_SECONDS)
            if stale is None:
                raise
            return bool(stale)
        decision = bool(status.get("allowed")) and not status.get("denied")
        self._decisions.put(cache_key, decision, self.ttl if decision else self.ttl / 10)
        return decision

    async def _call(self, method: Any, body: dict[str, Any], what: str) -> dict[str, Any]:
        self.reviews += 1
        try:
            result = await asyncio.to_thread(method, body, _preload_content=False)
            data = await asyncio.to_thread(result.json)
        except Exception as exc:
            # status and type only: a TokenReview's request and response bodies carry the token itself
            log.warning("%s failed: %s %s", what, type(exc).__name__, getattr(exc, "status", "") or "")
            raise unavailable(what) from exc
        return dict(data.get("status") or {})
