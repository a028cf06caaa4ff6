"""An emulated Kubernetes API server for tests: kmock's scaffold plus the API semantics our code relies on.

kmock 0.8's ``KubernetesEmulator`` stores objects as plain dicts: it sets no uid, resourceVersion,
generation or creationTimestamp, does not take the namespace from the URL, rejects ``generateName``,
answers 200 to creates, does not separate ``/status`` from the main resource, ignores selectors, has no
garbage collection and re-scans its request history on every request. Kopf, the API's watch and the
trainer's status sink depend on exactly those things, so this subclass of kmock's ``KubernetesScaffold``
(which still serves discovery: ``/api``, ``/apis``, resource lists) implements them as kube-apiserver
does. Where it cannot be exact it is stricter, never kinder: a test must not pass on what a real API
server would refuse. This module holds the store and its writes; ``emulator_watch.py`` lists and
watches, ``emulator_rules.py`` holds the pure rules (patches, selectors, reviews) and ``schema.py`` the
CRD's structural schema. Each semantic, as a test may rely on it:

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
* list and watch: label selectors (``=``, ``==``, ``!=``, ``key``, ``!key``) and field selectors
  (``=``, ``==``, ``!=``) on the field labels the real server indexes for each kind
  (``emulator_rules.FIELD_LABELS``: pods' ``spec.nodeName`` and ``status.phase``, events'
  ``involvedObject.*``, ``reason``, ``type``, ``source``..., every kind's ``metadata.name`` and
  ``metadata.namespace``); any other label is 400 BadRequest, as on a real server; a list with ``limit`` is paginated with ``continue`` tokens, every page from the
  snapshot of the first (its ``resourceVersion``), 410 for an unknown token; ``watch_delay`` holds every
  event back (a lagging watch cache) and ``frozen`` makes watches silent without closing; watches resume from a ``resourceVersion`` and answer 410 Gone
  once it has been compacted away (``compact()`` forces it); ``timeoutSeconds`` ends a watch. With
  ``allowWatchBookmarks=true`` a BOOKMARK event (the kind, and metadata with only a ``resourceVersion``)
  is sent every ``bookmark_interval`` seconds. Every watch request's parameters are kept in ``watched``,
  every list's in ``listed``.

* pods: ``binding`` (the scheduler's: sets ``spec.nodeName``, 409 when already bound) and ``eviction``
  (adds the ``DisruptionTarget`` condition, then deletes, finalizers honoured) subresources; Nodes and
  Leases are stored like any object.
* ResourceQuota admission, 403 Forbidden with kube-apiserver's messages (naming a generateName's prefix
  as the real one does): every pod while a quota's ``status.hard`` differs from its ``spec.hard`` ("status
  unknown for quota": the quota controller, ``tests/controlplane.py``, has not written it); a pod whose
  containers do not say the cpu or memory a quota constrains ("must specify"); a pod whose ``pods``,
  ``count/pods``, ``requests.*``/``limits.*`` (or bare ``cpu``/``memory``) would exceed ``spec.hard``,
  counting the pods that have not ended ("exceeded quota: NAME, requested: ..., used: ..., limited: ...").

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
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, rendering
from kmock._internal.k8s import KubernetesScaffold

from crd import openapi_schema, sweep_openapi_schema
from emulator_rules import (
    ADMIN,
    ADMIN_TOKEN,
    Grant,
    StatusError,
    check_field_labels,
    fields_match,
    json_patch,
    merge_patch,
    quota_refusal,
    resource_key,
    review,
    selector_matches,
)
from emulator_watch import WatchStreams
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
    "/v1/resourcequotas": ("ResourceQuota", True, {"status"}),
    "batch/v1/jobs": ("Job", True, {"status"}),
    "rbac.authorization.k8s.io/v1/roles": ("Role", True, set()),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", True, set()),
    "events.k8s.io/v1/events": ("Event", True, set()),
    "yolo-operator.io/v1alpha1/yolotrainings": ("YoloTraining", True, {"status"}),
    "yolo-operator.io/v1alpha1/yolosweeps": ("YoloSweep", True, {"status"}),
    "authentication.k8s.io/v1/tokenreviews": ("TokenReview", False, set()),
    "authorization.k8s.io/v1/subjectaccessreviews": ("SubjectAccessReview", False, set()),
}

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
class ApiEmulator(WatchStreams, KubernetesScaffold):
    """See the module docstring."""

    objects: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    writes: list[Write] = attrs.field(factory=list, init=False)
    reads: int = attrs.field(default=0, init=False)  # GET requests (fetch, list, watch) served
    reads_of: dict[str, int] = attrs.field(factory=dict, init=False)  # the same, by plural
    event_limit: int = 10000
    _rv: int = attrs.field(default=1000, init=False)
    _events: dict[str, list[tuple[int, str, dict[str, Any], float]]] = attrs.field(factory=dict, init=False)
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
    listed: list[tuple[str, dict[str, str]]] = attrs.field(factory=list, init=False)  # (plural, params) of lists
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
        self.schemas["yolo-operator.io/v1alpha1/yolosweeps"] = StructuralSchema("YoloSweep", sweep_openapi_schema())

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

    async def patch_status(self, plural: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        """Merge-patch an object's status server-side (as another client would), recording the event."""
        key = next(k for k in self.objects if k[0].endswith(f"/{plural}") and k[1:] == (namespace, name))
        current = self.objects[key]
        obj = self._admit(key[0], {**current, "status": merge_patch(current.get("status") or {}, status)}, current)
        self._bump(obj)
        self.objects[key] = obj
        await self._record(key[0], "MODIFIED", obj)

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
        if request.resource is None or resource_key(request.resource) not in self._infos:
            return await super()._handle(request)
        record = None
        if request.method.value in ("GET", "HEAD"):
            self.reads += 1
            self.reads_of[request.resource.plural] = self.reads_of.get(request.resource.plural, 0) + 1
        else:
            content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
            record = Write(request.method.value, request.resource.plural or "", request.namespace, request.name,
                           request.subresource, content_type, copy.deepcopy(request.data))
            self.writes.append(record)
        try:
            for fault in self.faults:
                if fault.matches(request):
                    fault.hits += 1
                    raise StatusError(fault.status, "Injected", f"injected fault {fault.status}")
            if request.action == enums.action.WATCH:
                return await self._watch(request)
            if request.action == enums.action.LIST:
                return aiohttp.web.json_response(self._list(request))
            if request.action == enums.action.FETCH:
                return aiohttp.web.json_response(self._fetch(request))
            assert record is not None
            obj, record.status = await self._write(request, record.content_type)
            return aiohttp.web.json_response(obj, status=record.status)
        except StatusError as exc:
            if record is not None:
                record.status = exc.code
            return self._status(exc)

    @staticmethod
    def _status(exc: StatusError) -> aiohttp.web.Response:
        body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "code": exc.code, "reason": exc.reason, "message": exc.message}
        return aiohttp.web.json_response(body, status=exc.code)

    def _key(self, request: rendering.Request, name: str | None = None) -> Key:
        assert request.resource is not None
        return (resource_key(request.resource), request.namespace, name or request.name or "")

    def _fetch(self, request: rendering.Request) -> dict[str, Any]:
        obj = self.objects.get(self._key(request))
        if obj is None:
            raise StatusError(404, "NotFound", f"{request.resource.plural} {request.name!r} not found")  # type: ignore[union-attr]
        return obj

    def _matching(self, request: rendering.Request) -> list[dict[str, Any]]:
        rkey = resource_key(request.resource)  # type: ignore[arg-type]
        labels, fields = request.params.get("labelSelector", ""), request.params.get("fieldSelector", "")
        plural = request.resource.plural or ""  # type: ignore[union-attr]
        check_field_labels(plural, fields)
        return [obj for (rk, ns, _), obj in self.objects.items()
                if rk == rkey and (request.namespace is None or ns == request.namespace)
                and selector_matches(obj["metadata"].get("labels") or {}, labels) and fields_match(obj, fields, plural)]

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
        raise StatusError(405, "MethodNotAllowed", f"{method} is not supported here")

    async def _pod_action(self, request: rendering.Request) -> dict[str, Any]:
        """The scheduler's binding (sets ``spec.nodeName``) and an eviction (DisruptionTarget, then deletion)."""
        key = self._key(request)
        pod = copy.deepcopy(self._fetch(request))
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []]
        if request.subresource == "binding":
            if pod["spec"].get("nodeName"):
                raise StatusError(409, "Conflict", f"pod {key[2]} is already assigned to node {pod['spec']['nodeName']}")
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
        return {**body, "status": review(plural, spec, self.tokens, self.grants)}

    async def _create(self, request: rendering.Request) -> dict[str, Any]:
        assert request.resource is not None
        rkey = resource_key(request.resource)
        kind, namespaced, subresources = self._infos[rkey]
        obj = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        meta = obj.setdefault("metadata", {})
        shown = meta.get("name") or meta.get("generateName") or ""  # admission errors name the prefix
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        if not meta.get("name"):
            raise StatusError(422, "Invalid", "metadata.name or metadata.generateName is required")
        if namespaced:
            meta["namespace"] = request.namespace or meta.get("namespace") or "default"
        key = (rkey, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise StatusError(409, "AlreadyExists", f'{request.resource.plural} "{meta["name"]}" already exists')
        if "status" in subresources:
            obj.pop("status", None)
        obj.setdefault("apiVersion", f"{request.resource.group}/{request.resource.version}".lstrip("/"))
        obj.setdefault("kind", kind)
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=utc_now())
        if kind == "Pod" and (refusal := quota_refusal(shown, obj, self.find("resourcequotas", meta["namespace"]),
                                                       self.find("pods", meta["namespace"]))):
            raise StatusError(403, "Forbidden", refusal)
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
            raise StatusError(409, "Conflict", "the object has been modified; please apply your changes to the latest version")
        try:
            if content_type == "application/json-patch+json":
                updated = json_patch(current, body)
            elif request.method.value == "PUT":
                updated = copy.deepcopy(body)
            else:
                updated = merge_patch(current, body)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise StatusError(422, "Invalid", f"patch does not apply: {exc}") from exc
        has_status = "status" in self._infos[key[0]][2]
        if request.subresource == "status":
            result = copy.deepcopy(current)
            result["status"] = updated.get("status", {})
        else:
            result = updated
            for immutable in ("uid", "namespace", "name"):
                if (updated.get("metadata") or {}).get(immutable, current["metadata"].get(immutable)) != \
                        current["metadata"].get(immutable):
                    raise StatusError(422, "Invalid", f"metadata.{immutable}: Invalid value: field is immutable")
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
            raise StatusError(404, "NotFound", f"{key[0]} {key[2]!r} not found")
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
            raise StatusError(422, "Invalid", f'{schema.kind}.{rkey.split("/", maxsplit=1)[0]} "{name}" is invalid: {exc}') from exc

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
