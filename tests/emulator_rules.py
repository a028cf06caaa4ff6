"""The rules the emulated API server applies, as pure functions: merge and JSON patches, label and field
selectors, and RBAC in miniature (who a token is; what a user may do). ``tests/emulator.py`` serves them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import kmock


class StatusError(Exception):
    """An API error answered as a ``Status`` object: ``code`` (HTTP), ``reason`` (CamelCase), ``message``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def resource_key(resource: kmock.resource) -> str:
    """``group/version/plural`` (the core group is empty): how the emulator keys a resource."""
    return f"{resource.group or ''}/{resource.version}/{resource.plural}"


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


def selector_matches(labels: dict[str, str], selector: str) -> bool:
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


def fields_match(obj: dict[str, Any], selector: str, plural: str = "") -> bool:
    """Whether ``obj`` matches a field selector (``a.b=v``, ``a.b==v``, ``a.b!=v``) of kind ``plural``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negated = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        found: Any = obj
        for part in _FIELD_PATHS.get((plural, key), key).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if ((found or "") == value) == negated:
            return False
    return True


def review(plural: str, spec: dict[str, Any], tokens: dict[str, tuple[str, list[str]]],
           grants: list[Grant]) -> dict[str, Any]:
    """The status of a TokenReview (who a token is) or a SubjectAccessReview (may they do it)."""
    if plural == "tokenreviews":
        identity = tokens.get(spec.get("token", ""))
        status: dict[str, Any] = {"authenticated": identity is not None}
        if identity is not None:
            status["user"] = {"username": identity[0], "groups": identity[1], "uid": f"uid-{identity[0]}"}
        else:
            status["error"] = "invalid bearer token"
        return status
    user, groups = spec.get("user", ""), list(spec.get("groups") or [])
    non_resource = "nonResourceAttributes" in spec
    attributes = spec.get("nonResourceAttributes") or spec.get("resourceAttributes") or {}
    allowed = "system:masters" in groups or any(g.allows(user, groups, attributes, non_resource) for g in grants)
    return {"allowed": allowed}


#: The field labels kube-apiserver accepts in a ``fieldSelector``, by plural (every kind has metadata.name
#: and metadata.namespace); any other is 400 "field label not supported", as on a real server.
FIELD_LABELS: dict[str, frozenset[str]] = {
    "pods": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                       "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                       "status.nominatedNodeName"}),
    "events": frozenset({"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}),
    "nodes": frozenset({"spec.unschedulable"}),
    "secrets": frozenset({"type"}),
}
#: field labels whose value lives elsewhere in the object
_FIELD_PATHS = {("events", "source"): "source.component"}


def check_field_labels(plural: str, selector: str) -> None:
    """400 BadRequest for a field label the real API server does not index for this kind."""
    allowed = FIELD_LABELS.get(plural, frozenset()) | {"metadata.name", "metadata.namespace"}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        label = term.replace("==", "=").replace("!=", "=").partition("=")[0]
        if label not in allowed:
            raise StatusError(400, "BadRequest", f'"{label}" is not a known field selector: only "'
                              + '", "'.join(sorted(allowed)) + '"')


_SUFFIXES = {"m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "Ti": 2**40}


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("500m", "2Gi", 1) as a number (enough for quota arithmetic in tests)."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)


def pod_usage(pod: dict[str, Any], resource: str) -> float:
    """What a pod counts toward one quota key: pods, count/pods, requests.X, limits.X or bare cpu/memory."""
    if resource in ("pods", "count/pods"):
        return 1.0
    kind, _, name = resource.partition(".") if resource.startswith(("requests.", "limits.")) else ("requests", "", resource)
    total = 0.0
    for container in (pod.get("spec") or {}).get("containers") or []:
        amounts = (container.get("resources") or {}).get(kind) or {}
        if kind == "requests" and name not in amounts:  # a request defaults to its limit
            amounts = (container.get("resources") or {}).get("limits") or {}
        if name in amounts:
            total += quantity(amounts[name])
    return total


def _unspecified(pod: dict[str, Any], key: str) -> list[str]:
    """Containers that do not say ``key`` (a compute resource a quota constrains), which the quota requires."""
    kind, _, name = key.partition(".") if key.startswith(("requests.", "limits.")) else ("requests", "", key)
    if name not in ("cpu", "memory", "ephemeral-storage"):
        return []  # extended resources (nvidia.com/gpu) simply count zero when absent
    missing = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        said = resources.get(kind) or {}
        if name not in said and not (kind == "requests" and name in (resources.get("limits") or {})):
            missing.append(str(container.get("name")))
    return missing


def _shown(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{int(value * 1000)}m"


def quota_refusal(name: str, pod: dict[str, Any], quotas: list[dict[str, Any]], pods: list[dict[str, Any]]) -> str | None:
    """The ResourceQuota admission's verdict on a new pod: None, or the message of its 403 Forbidden.

    As kube-apiserver's: a quota whose status the quota controller has not written yet refuses every pod
    ("status unknown"); a quota on cpu or memory refuses a pod whose containers do not say theirs ("must
    specify"); then usage, counting the namespace's pods that have not ended, must stay within ``hard``.
    Messages are the server's, with ``name`` the pod's name or, for a ``generateName``, its prefix.
    """
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        quota_name = quota["metadata"]["name"]
        hard = (quota.get("spec") or {}).get("hard") or {}
        if ((quota.get("status") or {}).get("hard") or {}) != hard:
            return f'pods "{name}" is forbidden: status unknown for quota: {quota_name}, resources: {",".join(sorted(hard))}'
        missing = [f"{key} for: {','.join(containers)}" for key in sorted(hard) if (containers := _unspecified(pod, key))]
        if missing:
            return f'pods "{name}" is forbidden: failed quota: {quota_name}: must specify {"; ".join(missing)}'
        over = [(key, pod_usage(pod, key), sum(pod_usage(p, key) for p in live), quantity(limit))
                for key, limit in sorted(hard.items())]
        over = [item for item in over if item[1] and item[1] + item[2] > item[3]]
        if over:
            requested, used, limited = (",".join(f"{item[0]}={_shown(item[i])}" for item in over) for i in (1, 2, 3))
            return (f'pods "{name}" is forbidden: exceeded quota: {quota_name}, '
                    f"requested: {requested}, used: {used}, limited: {limited}")
    return None
