"""An emulated Kubernetes API server for tests: kmock's scaffold plus the API semantics our code relies on.

kmock 0.8's ``KubernetesEmulator`` stores objects as plain dicts: it sets no uid, resourceVersion,
generation or creationTimestamp, does not take the namespace from the URL, rejects ``generateName``,
answers 200 to creates, does not separate ``/status`` from the main resource, ignores selectors, has no
garbage collection and re-scans its request history on every request. Kopf, the API's watch and the
trainer's status sink depend on exactly those things, so this subclass of kmock's ``KubernetesScaffold``
(which still serves discovery: ``/api``, ``/apis``, resource lists) implements them as kube-apiserver
does. Where it cannot be exact it is stricter, never kinder: a test must not pass on what a real API
server would refuse. Each semantic, as a test may rely on it:

* create: server-set ``uid``, ``resourceVersion``, ``generation``, ``creationTimestamp``; namespace from
  the URL; ``generateName``; 201; 409 AlreadyExists; ``status`` dropped when the resource has a status
  subresource (as the API server does for such CRDs).
* schema (the YoloTraining CRD, loaded from the chart; ``tests/schema.py``): every write, status
  included, is pruned of undeclared fields, defaulted, validated against the OpenAPI schema and the CEL
  rules (``x-kubernetes-validations``, transition rules with ``oldSelf``); a violation is 422 Invalid
  naming each field. No validation ratcheting (stricter than 1.30+).
* patch (merge, strategic-merge treated as merge, JSON patch with ``test``) and put: a
  ``metadata.resourceVersion`` in the body is a precondition (409 Conflict when stale); the main resource
  ignores ``status`` and refuses a changed ``uid``/``name``/``namespace`` (422, immutable); the
  ``/status`` subresource changes only ``status`` and ignores every other field of the body, ``metadata.uid``
  included (only ``resourceVersion`` is a precondition there); ``generation`` grows when anything but
  metadata and status changes; every write bumps ``resourceVersion``.
* delete: finalizers block deletion (``deletionTimestamp`` is set; removing the last finalizer deletes).
  Garbage collection is asynchronous: ``gc_delay`` seconds after an owner is gone, every object whose
  owners (``ownerReferences[].uid``) no longer exist is deleted (background propagation), recursively;
  until then children linger, as they do on a real cluster.
* list and watch: label selectors (``=``, ``==``, ``!=``, ``key``, ``!key``) and field selectors on
  any field path; a list with ``limit`` is paginated with ``continue`` tokens, every page from the
  snapshot of the first (its ``resourceVersion``), 410 for an unknown token; ``watch_delay`` holds every
  event back (a lagging watch cache) and ``frozen`` makes watches silent without closing; watches resume from a ``resourceVersion`` and answer 410 Gone
  once it has been compacted away (``compact()`` forces it); ``timeoutSeconds`` ends a watch. With
  ``allowWatchBookmarks=true`` a BOOKMARK event (the kind, and metadata with only a ``resourceVersion``)
  is sent every ``bookmark_interval`` seconds. Every watch request's parameters are kept in ``watched``.

* pods: ``binding`` (the scheduler's: sets ``spec.nodeName``, 409 when already bound) and ``eviction``
  (adds the ``DisruptionTarget`` condition, then deletes, finalizers honoured) subresources; Nodes and
  Leases are stored like any object. Field selectors work on any field path (``spec.nodeName``).

* TokenReview and SubjectAccessReview: ``tokens`` maps a bearer token to (user, groups); ``grants`` is a
  minimal RBAC authorizer: a grant gives a user or group some verbs on yolotrainings in one namespace (or
  all, as a ClusterRoleBinding), or ``get`` on the non-resource URL ``/metrics``. The group
  ``system:masters`` may do everything, as in a real cluster. ``ADMIN_TOKEN`` belongs to that group.

Not emulated (documented, tests must not depend on it): admission webhooks, schema validation of
built-in kinds (Jobs, Pods), strategic-merge list semantics, server-side apply, foreground/orphan
deletion, field managers, and RBAC on the emulator's own endpoints (every client may call every one).
The Job controller, the scheduler and the kubelet are ``tests/kubelet.py``.
Fault injection: ``fail(count, status, ...)`` answers the next matching requests with an error.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import string
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, rendering
from kmock._internal.k8s import KubernetesScaffold

from crd import openapi_schema
from schema import SchemaError, StructuralSchema
from yolo_crd.status import utc_now

Key = tuple[str, str | None, str]  # (resource "group/version/plural", namespace, name)

DEFAULT_RESOURCES: dict[str, tuple[str, bool, set[str]]] = {
    # "group/version/plural": (kind, namespaced, subresources)
    "/v1/namespaces": ("Namespace", False, set()),
    "/v1/events": ("Event", True, set()),
    "/v1/nodes": ("Node", False, {"status"}),
    "coordination.k8s.io/v1/leases": ("Lease", True, set()),
    "/v1/pods": ("Pod", True, {"status", "binding", "eviction"}),
    "/v1/serviceaccounts": ("ServiceAccount", True, set()),
    "/v1/secrets": ("Secret", True, set()),
    "batch/v1/jobs": ("Job", True, {"status"}),
    "rbac.authorization.k8s.io/v1/roles": ("Role", True, set()),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", True, set()),
    "events.k8s.io/v1/events": ("Event", True, set()),
    "yolo-operator.io/v1alpha1/yolotrainings": ("YoloTraining", True, {"status"}),
    "authentication.k8s.io/v1/tokenreviews": ("TokenReview", False, set()),
    "authorization.k8s.io/v1/subjectaccessreviews": ("SubjectAccessReview", False, set()),
}

ADMIN_TOKEN = "emulator-admin-token-0123456789"
ADMIN = ("admin", ["system:masters", "system:authenticated"])


@dataclass(frozen=True)
class Grant:
    """RBAC in miniature: ``subject`` (a user name or a group) may do ``verbs`` in ``namespace`` (None: all)."""

    subject: str
    verbs: tuple[str, ...]
    namespace: str | None = None
    resource: str = "yolotrainings"  # or "/metrics" for the non-resource URL

    def allows(self, user: str, groups: list[str], attributes: dict[str, Any], non_resource: bool) -> bool:
        if (self.subject != user and self.subject not in groups) or attributes.get("verb") not in self.verbs:
            return False
        if non_resource:
            return self.resource == attributes.get("path")
        namespace = attributes.get("namespace") or None
        return self.resource == attributes.get("resource") and self.namespace in (None, namespace)


def _rkey(resource: kmock.resource) -> str:
    return f"{resource.group or ''}/{resource.version}/{resource.plural}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 JSON patch (add, replace, remove, test); raises ValueError when a test fails."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        current = (parent[int(last)] if isinstance(parent, list) and last != "-" else
                   parent.get(last) if isinstance(parent, dict) else None)
        if op["op"] == "test":
            if current != op.get("value"):
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            if last == "-":
                parent.append(op["value"])
            elif op["op"] == "add":
                parent.insert(int(last), op["value"])
            else:
                parent[int(last)] = op["value"]
        else:
            parent[last] = op["value"]
    return doc


def _selector_matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _fields_match(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.replace("==", "=").partition("=")
        found: Any = obj
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if (found or "") != value:
            return False
    return True


class _Error(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Fault:
    """Answer ``count`` requests matching (method, resource, subresource) with ``status``."""

    count: int
    status: int
    method: str | None = None
    plural: str | None = None
    subresource: str | None = None
    hits: int = 0

    def matches(self, request: rendering.Request) -> bool:
        return (
            self.hits < self.count
            and (self.method is None or request.method.value == self.method.upper())
            and (self.plural is None or (request.resource is not None and request.resource.plural == self.plural))
            and (self.subresource is None or request.subresource == self.subresource)
        )


@dataclass
class Write:
    """A recorded write request: for assertions on what a client sent, in order."""

    method: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None
    content_type: str
    body: Any
    status: int = 0
    at: float = field(default_factory=lambda: asyncio.get_running_loop().time())


@attrs.define(kw_only=True, eq=False)
class ApiEmulator(KubernetesScaffold):
    """See the module docstring."""

    objects: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    writes: list[Write] = attrs.field(factory=list, init=False)
    reads: int = attrs.field(default=0, init=False)  # GET requests (fetch, list, watch) served
    event_limit: int = 10000
    _rv: int = attrs.field(default=1000, init=False)
    _events: dict[str, deque[tuple[int, str, dict[str, Any], float]]] = attrs.field(factory=dict, init=False)
    _compacted: dict[str, int] = attrs.field(factory=dict, init=False)
    # set and replaced on every recorded event: watchers wait on it without a lock, so cancelling a
    # watch can never leave a lock held (asyncio.Condition + wait_for could, on Python 3.11)
    _tick: asyncio.Event | None = attrs.field(default=None, init=False)
    _infos: dict[str, tuple[str, bool, set[str]]] = attrs.field(factory=dict, init=False)
    _watches: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)
    closing: bool = attrs.field(default=False, init=False)  # set while the server stops: watches end at once
    tokens: dict[str, tuple[str, list[str]]] = attrs.field(factory=lambda: {ADMIN_TOKEN: ADMIN}, init=False)
    grants: list[Grant] = attrs.field(factory=list, init=False)
    reviews: list[dict[str, Any]] = attrs.field(factory=list, init=False)  # every review's spec, in order
    schemas: dict[str, StructuralSchema] = attrs.field(factory=dict, init=False)
    watched: list[tuple[str, dict[str, str]]] = attrs.field(factory=list, init=False)  # (plural, params)
    gc_delay: float = 1.0
    bookmark_interval: float = 1.0
    watch_delay: float = 0.0  # seconds every watch event is held back (a lagging watch cache)
    frozen: bool = False  # every watch goes silent without closing (a stuck connection)
    _pages: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict, init=False)  # continue token -> rest

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, (kind, namespaced, subresources) in DEFAULT_RESOURCES.items():
            self.declare(key, kind, namespaced, subresources)
        self.schemas["yolo-operator.io/v1alpha1/yolotrainings"] = StructuralSchema("YoloTraining", openapi_schema())

    def declare(self, key: str, kind: str, namespaced: bool, subresources: set[str]) -> None:
        """Serve a resource (``group/version/plural``; core group is empty) with discovery info."""
        group, version, plural = key.split("/")
        verbs = {"get", "list", "watch", "create", "patch", "update", "delete"}
        self.resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, verbs=verbs, subresources=subresources,
            singular=kind.lower())
        self._infos[key] = (kind, namespaced, subresources)

    # -- helpers for tests -------------------------------------------------------------------------

    def fail(self, count: int, status: int = 503, *, method: str | None = None, plural: str | None = None,
             subresource: str | None = None) -> Fault:
        """Answer the next ``count`` matching requests with ``status`` (e.g. 503, 409)."""
        fault = Fault(count, status, method, plural, subresource)
        self.faults.append(fault)
        return fault

    def compact(self) -> None:
        """Forget all watch history, so that resuming any watch answers 410 Gone."""
        for key, events in self._events.items():
            self._compacted[key] = self._rv
            events.clear()

    async def patch_status(self, plural: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        """Merge-patch an object's status server-side (as another client would), recording the event."""
        key = next(k for k in self.objects if k[0].endswith(f"/{plural}") and k[1:] == (namespace, name))
        current = self.objects[key]
        obj = self._admit(key[0], {**current, "status": merge_patch(current.get("status") or {}, status)}, current)
        self._bump(obj)
        self.objects[key] = obj
        await self._record(key[0], "MODIFIED", obj)

    def drop_watches(self) -> None:
        """End every open watch stream (as an API server restart does)."""
        for task in list(self._watches):
            task.cancel()

    def find(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored objects of a plural (optionally one namespace)."""
        return [copy.deepcopy(obj) for (rk, ns, _), obj in list(self.objects.items())
                if rk.endswith(f"/{plural}") and (namespace is None or ns == namespace)]

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of one stored object, or None."""
        for (rk, ns, nm), obj in list(self.objects.items()):
            if rk.endswith(f"/{plural}") and ns == namespace and nm == name:
                return copy.deepcopy(obj)
        return None

    # -- request handling --------------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        del self._requests[:-200]  # kmock scans its history per request; keep it short
        if request.resource is None or _rkey(request.resource) not in self._infos:
            return await super()._handle(request)
        record = None
        if request.method.value in ("GET", "HEAD"):
            self.reads += 1
        else:
            content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
            record = Write(request.method.value, request.resource.plural or "", request.namespace, request.name,
                           request.subresource, content_type, copy.deepcopy(request.data))
            self.writes.append(record)
        try:
            for fault in self.faults:
                if fault.matches(request):
                    fault.hits += 1
                    raise _Error(fault.status, "Injected", f"injected fault {fault.status}")
            if request.action == enums.action.WATCH:
                return await self._watch(request)
            if request.action == enums.action.LIST:
                return aiohttp.web.json_response(self._list(request))
            if request.action == enums.action.FETCH:
                return aiohttp.web.json_response(self._fetch(request))
            assert record is not None
            obj, record.status = await self._write(request, record.content_type)
            return aiohttp.web.json_response(obj, status=record.status)
        except _Error as exc:
            if record is not None:
                record.status = exc.code
            return self._status(exc)

    @staticmethod
    def _status(exc: _Error) -> aiohttp.web.Response:
        body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "code": exc.code, "reason": exc.reason, "message": exc.message}
        return aiohttp.web.json_response(body, status=exc.code)

    def _key(self, request: rendering.Request, name: str | None = None) -> Key:
        assert request.resource is not None
        return (_rkey(request.resource), request.namespace, name or request.name or "")

    def _fetch(self, request: rendering.Request) -> dict[str, Any]:
        obj = self.objects.get(self._key(request))
        if obj is None:
            raise _Error(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")  # type: ignore[union-attr]
        return obj

    def _matching(self, request: rendering.Request) -> list[dict[str, Any]]:
        rkey = _rkey(request.resource)  # type: ignore[arg-type]
        labels, fields = request.params.get("labelSelector", ""), request.params.get("fieldSelector", "")
        return [obj for (rk, ns, _), obj in self.objects.items()
                if rk == rkey and (request.namespace is None or ns == request.namespace)
                and _selector_matches(obj["metadata"].get("labels") or {}, labels) and _fields_match(obj, fields)]

    def _list(self, request: rendering.Request) -> dict[str, Any]:
        kind = self._infos[_rkey(request.resource)][0]  # type: ignore[arg-type]
        token = request.params.get("continue")
        if token:
            if token not in self._pages:
                raise _Error(410, "Expired", "the provided continue parameter is too old")
            items, version = self._pages.pop(token), token.split(".")[0]
        else:
            items, version = [copy.deepcopy(o) for o in self._matching(request)], str(self._rv)
        meta: dict[str, Any] = {"resourceVersion": version}
        limit = int(request.params.get("limit") or 0)
        if limit and len(items) > limit:
            items, rest = items[:limit], items[limit:]
            meta["continue"] = f"{version}.{uuid.uuid4().hex}"
            meta["remainingItemCount"] = len(rest)
            self._pages[meta["continue"]] = rest
            while len(self._pages) > 64:
                self._pages.pop(next(iter(self._pages)))
        return {"apiVersion": "v1", "kind": f"{kind}List", "metadata": meta, "items": items}

    async def _watch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        assert request.resource is not None and request._raw_request is not None
        rkey = _rkey(request.resource)
        if self.closing:
            return aiohttp.web.json_response({"kind": "Status", "code": 503, "status": "Failure"}, status=503)
        task = asyncio.current_task()
        assert task is not None
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        self.watched.append((request.resource.plural or "", dict(request.params)))
        since = int(request.params.get("resourceVersion") or 0)
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        bookmarks = request.params.get("allowWatchBookmarks") == "true"
        kind, _, _ = self._infos[rkey]
        api_version = f"{request.resource.group}/{request.resource.version}".lstrip("/")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        labels, fields = request.params.get("labelSelector", ""), request.params.get("fieldSelector", "")

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return ((request.namespace is None or meta.get("namespace") == request.namespace)
                    and _selector_matches(meta.get("labels") or {}, labels) and _fields_match(obj, fields))

        async def send(kind: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        if since and since < self._compacted.get(rkey, 0):
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                    "message": f"too old resource version: {since} ({self._compacted[rkey]})"}
            await send("ERROR", gone)
            return response
        if not since:
            for obj in self._matching(request):
                await send("ADDED", copy.deepcopy(obj))
            since = self._rv
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            while loop.time() < deadline:
                if self.frozen:  # the connection stays open and silent, as a stuck proxy would keep it
                    await asyncio.sleep(0.05)
                    continue
                tick = self._current_tick()  # taken before the scan: a later event sets it, none is missed
                seen = self._rv  # every event up to here is in the deque now: after the scan, all are sent
                ripe = loop.time() - self.watch_delay
                held = None  # the first event still held back by watch_delay: nothing after it is sent yet
                for rv, event_type, obj, at in list(self._events.get(rkey, ())):
                    if rv <= since:
                        continue
                    if at > ripe:
                        held = at
                        break
                    since = rv
                    if wanted(obj):
                        await send(event_type, obj)
                if bookmarks and held is None and loop.time() >= next_bookmark:
                    since = max(since, seen)
                    await send("BOOKMARK", {"kind": kind, "apiVersion": api_version,
                                            "metadata": {"resourceVersion": str(since)}})
                    next_bookmark = loop.time() + self.bookmark_interval
                wake = min(deadline, next_bookmark) if bookmarks else deadline
                if held is not None:
                    wake = min(wake, held + self.watch_delay)
                try:
                    await asyncio.wait_for(tick.wait(), timeout=max(0.0, wake - loop.time()))
                except TimeoutError:
                    if loop.time() >= deadline:
                        break
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        return response

    def _current_tick(self) -> asyncio.Event:
        if self._tick is None:
            self._tick = asyncio.Event()
        return self._tick

    async def _record(self, rkey: str, kind: str, obj: dict[str, Any]) -> None:
        events = self._events.setdefault(rkey, deque())
        events.append((self._rv, kind, copy.deepcopy(obj), asyncio.get_running_loop().time()))
        while len(events) > self.event_limit:
            self._compacted[rkey] = events.popleft()[0]
        tick, self._tick = self._current_tick(), asyncio.Event()
        tick.set()

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    async def _write(self, request: rendering.Request, content_type: str) -> tuple[dict[str, Any], int]:
        method = request.method.value
        if method == "POST" and request.resource is not None and request.resource.plural.endswith("reviews"):
            return self._review(request.resource.plural, dict(request.data or {})), 201
        if method == "POST" and request.name is None:
            return await self._create(request), 201
        if method == "POST" and request.subresource in ("binding", "eviction"):
            return await self._pod_action(request), 201
        if method == "DELETE" and request.name is not None:
            return await self._delete(self._key(request)), 200
        if method in ("PATCH", "PUT") and request.name is not None:
            return await self._update(request, content_type), 200
        raise _Error(405, "MethodNotAllowed", f"{method} is not supported here")

    async def _pod_action(self, request: rendering.Request) -> dict[str, Any]:
        """The scheduler's binding (sets ``spec.nodeName``) and an eviction (DisruptionTarget, then deletion)."""
        key = self._key(request)
        pod = copy.deepcopy(self._fetch(request))
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []]
        if request.subresource == "binding":
            if pod["spec"].get("nodeName"):
                raise _Error(409, "Conflict", f"pod {key[2]} is already assigned to node {pod['spec']['nodeName']}")
            pod["spec"]["nodeName"] = ((request.data or {}).get("target") or {}).get("name")
            conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": utc_now()})
        else:
            conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting", "lastTransitionTime": utc_now()})
        pod.setdefault("status", {})["conditions"] = conditions
        self._bump(pod)
        self.objects[key] = pod
        await self._record(key[0], "MODIFIED", pod)
        if request.subresource == "eviction":
            await self._delete(key)
        return {"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 201}

    def _review(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = dict(body.get("spec") or {})
        self.reviews.append(spec)
        if plural == "tokenreviews":
            identity = self.tokens.get(spec.get("token", ""))
            status: dict[str, Any] = {"authenticated": identity is not None}
            if identity is not None:
                status["user"] = {"username": identity[0], "groups": identity[1], "uid": f"uid-{identity[0]}"}
            else:
                status["error"] = "invalid bearer token"
        else:
            user, groups = spec.get("user", ""), list(spec.get("groups") or [])
            non_resource = "nonResourceAttributes" in spec
            attributes = spec.get("nonResourceAttributes") or spec.get("resourceAttributes") or {}
            allowed = "system:masters" in groups or any(g.allows(user, groups, attributes, non_resource)
                                                        for g in self.grants)
            status = {"allowed": allowed}
        return {**body, "status": status}

    async def _create(self, request: rendering.Request) -> dict[str, Any]:
        assert request.resource is not None
        rkey = _rkey(request.resource)
        kind, namespaced, subresources = self._infos[rkey]
        obj = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if not meta.get("name"):
            raise _Error(422, "Invalid", "metadata.name or metadata.generateName is required")
        if namespaced:
            meta["namespace"] = request.namespace or meta.get("namespace") or "default"
        key = (rkey, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise _Error(409, "AlreadyExists", f'{request.resource.plural} "{meta["name"]}" already exists')
        if "status" in subresources:
            obj.pop("status", None)
        obj.setdefault("apiVersion", f"{request.resource.group}/{request.resource.version}".lstrip("/"))
        obj.setdefault("kind", kind)
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=utc_now())
        obj = self._admit(rkey, obj, None)
        self._bump(obj)
        self.objects[key] = obj
        await self._record(rkey, "ADDED", obj)
        return obj

    async def _update(self, request: rendering.Request, content_type: str) -> dict[str, Any]:
        key = self._key(request)
        current = self._fetch(request)
        body = request.data
        expected = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            raise _Error(409, "Conflict", "the object has been modified; please apply your changes to the latest version")
        try:
            if content_type == "application/json-patch+json":
                updated = json_patch(current, body)
            elif request.method.value == "PUT":
                updated = copy.deepcopy(body)
            else:
                updated = merge_patch(current, body)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Error(422, "Invalid", f"patch does not apply: {exc}") from exc
        has_status = "status" in self._infos[key[0]][2]
        if request.subresource == "status":
            result = copy.deepcopy(current)
            result["status"] = updated.get("status", {})
        else:
            result = updated
            for immutable in ("uid", "namespace", "name"):
                if (updated.get("metadata") or {}).get(immutable, current["metadata"].get(immutable)) != \
                        current["metadata"].get(immutable):
                    raise _Error(422, "Invalid", f"metadata.{immutable}: Invalid value: field is immutable")
            result["metadata"] = {**updated.get("metadata", {}), **{k: current["metadata"][k] for k in (
                "uid", "namespace", "name", "creationTimestamp", "generation") if k in current["metadata"]}}
            if has_status:
                result["status"] = copy.deepcopy(current.get("status"))
                if result["status"] is None:
                    result.pop("status")
            spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
            if spec_of(result) != spec_of(current):
                result["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        result = self._admit(key[0], result, current)
        self._bump(result)
        self.objects[key] = result
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return await self._remove(key)
        await self._record(key[0], "MODIFIED", result)
        return result

    async def _delete(self, key: Key) -> dict[str, Any]:
        obj = self.objects.get(key)
        if obj is None:
            raise _Error(404, "NotFound", f"{key[0]} {key[2]!r} not found")
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = utc_now()
                self._bump(obj)
                await self._record(key[0], "MODIFIED", obj)
            return obj
        return await self._remove(key)

    def _admit(self, rkey: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        schema = self.schemas.get(rkey)
        if schema is None:
            return obj
        try:
            return schema.admit(obj, old)
        except SchemaError as exc:
            name = (obj.get("metadata") or {}).get("name")
            raise _Error(422, "Invalid", f'{schema.kind}.{rkey.split("/", maxsplit=1)[0]} "{name}" is invalid: {exc}') from exc

    async def _remove(self, key: Key) -> dict[str, Any]:
        obj = self.objects.pop(key)
        self._bump(obj)
        await self._record(key[0], "DELETED", obj)
        asyncio.get_running_loop().call_later(self.gc_delay, lambda: asyncio.ensure_future(self.collect_garbage()))
        return obj

    async def collect_garbage(self) -> None:
        """Delete every object whose owners are all gone (background propagation), as the GC does."""
        uids = {o["metadata"].get("uid") for o in self.objects.values()}
        orphans = [k for k, o in self.objects.items() if (refs := o["metadata"].get("ownerReferences"))
                   and not any(ref.get("uid") in uids for ref in refs)]
        for key in orphans:
            if key in self.objects:
                await self._delete(key)
