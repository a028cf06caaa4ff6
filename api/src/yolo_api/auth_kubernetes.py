"""``auth=kubernetes``: delegate to the cluster (TokenReview, then SubjectAccessReview), with a cache.

A user's token is reviewed by the API server; each action is then asked of the cluster's authorizer for
that user, their groups and extra attributes, on ``yolotrainings`` (or ``yolosweeps``) in the object's
namespace. So the HTTP API
grants exactly what ``kubectl`` would, and RBAC stays the one place where rights are kept.

Reviews run in a worker thread (the kubernetes client blocks) and are cached. When the API server cannot
be reached, a decision it gave in the last ``STALE_SECONDS`` still holds (pollers keep their answers
through a control-plane blip, like the status cache itself); a decision never made is answered 503, never
an allow.
"""

import asyncio
import logging
import time
from typing import Any

from cachetools import TLRUCache

from yolo_api.auth import GET, METRICS, TRAININGS, Principal, token_key
from yolo_api.errors import ApiError
from yolo_crd.names import GROUP

log = logging.getLogger(__name__)

STALE_SECONDS = 600.0

#: (apiGroup, resource, verbs) of the calls below, for the API's ClusterRole in the chart.
PERMISSIONS = (("authentication.k8s.io", "tokenreviews", ("create",)),
               ("authorization.k8s.io", "subjectaccessreviews", ("create",)))


def access_review(who: Principal, action: str, namespace: str | None, resource: str = TRAININGS) -> dict[str, Any]:
    """The SubjectAccessReview body for one action on ``resource`` (pure: unit-tested)."""
    spec: dict[str, Any] = {"user": who.name, "groups": list(who.groups), "uid": who.uid or None,
                            "extra": who.extra or None}
    if action == METRICS:
        spec["nonResourceAttributes"] = {"path": "/metrics", "verb": GET}
    else:
        spec["resourceAttributes"] = {"group": GROUP, "resource": resource, "verb": action,
                                      "namespace": namespace or ""}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {k: v for k, v in spec.items() if v is not None}}


#: A cached review: (monotonic time until which it is fresh, the answer).
Entry = tuple[float, Any]


def review_cache(max_entries: int = 10_000) -> TLRUCache[Any, Entry]:
    """A bounded cache of reviews (least recently used dropped first) that keeps each one ``STALE_SECONDS``
    past its freshness, for answers while the cluster cannot be asked; cachetools drops what is older."""
    return TLRUCache(max_entries, ttu=lambda _key, entry, _now: entry[0] + STALE_SECONDS,
                     timer=lambda: time.monotonic())  # noqa: PLW0108 - looked up at each call: tests move the clock


def fresh(cache: TLRUCache[Any, Entry], key: Any) -> Any:
    """The cached answer while it is fresh, else None."""
    entry = cache.get(key)
    return entry[1] if entry is not None and entry[0] >= time.monotonic() else None


def stale(cache: TLRUCache[Any, Entry], key: Any) -> Any:
    """The cached answer, fresh or up to ``STALE_SECONDS`` past it, else None."""
    entry = cache.get(key)
    return None if entry is None else entry[1]


def remember(cache: TLRUCache[Any, Entry], key: Any, answer: Any, ttl: float) -> None:
    """Cache ``answer`` as fresh for ``ttl`` seconds."""
    cache[key] = (time.monotonic() + ttl, answer)


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
        self._principals = review_cache()
        self._decisions = review_cache()
        self.reviews = 0  # TokenReviews + SubjectAccessReviews sent (for tests and metrics)

    async def authenticate(self, token: str | None) -> Principal | None:
        """The user the cluster says the token belongs to, or None."""
        if token is None:
            return None
        key = token_key(token)
        cached = fresh(self._principals, key)
        if cached is not None:
            return cached or None  # False: a cached rejection
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            status = await self._call(self._authn.create_token_review, body, "TokenReview")
        except ApiError:
            kept = stale(self._principals, key)
            if kept is None:
                raise
            return kept or None
        user = status.get("user") or {}
        who = Principal(name=user.get("username", ""), key=key, groups=tuple(user.get("groups") or ()),
                        uid=user.get("uid") or "", extra=dict(user.get("extra") or {}))
        authenticated = bool(status.get("authenticated")) and bool(who.name)
        if not authenticated and status.get("error"):
            log.info("token rejected by the cluster: %s", status["error"])
        remember(self._principals, key, who if authenticated else False, self.ttl if authenticated else self.ttl / 10)
        return who if authenticated else None

    async def allowed(self, who: Principal, action: str, namespace: str | None, resource: str = TRAININGS) -> bool:
        """The cluster authorizer's decision for ``who`` (cached)."""
        cache_key = (who.key, action, namespace, resource)
        cached = fresh(self._decisions, cache_key)
        if cached is not None:
            return bool(cached)
        try:
            status = await self._call(self._authz.create_subject_access_review,
                                      access_review(who, action, namespace, resource), "SubjectAccessReview")
        except ApiError:
            kept = stale(self._decisions, cache_key)
            if kept is None:
                raise
            return bool(kept)
        decision = bool(status.get("allowed")) and not status.get("denied")
        remember(self._decisions, cache_key, decision, self.ttl if decision else self.ttl / 10)
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
