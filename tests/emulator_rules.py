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


def fields_match(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.replace("==", "=").partition("=")
        found: Any = obj
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if (found or "") != value:
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
