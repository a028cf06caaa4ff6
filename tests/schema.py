"""A CRD's structural schema applied the way the API server applies it to every write, status included.

Order and semantics follow kube-apiserver for custom resources:

1. **pruning**: fields the schema does not declare are dropped silently (not an error), except below
   ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``, ``kind`` and ``metadata`` are kept;
2. **defaulting**: ``default`` values fill absent fields (nulls are pruned first, unless ``nullable``);
3. **validation** against the OpenAPI v3 schema (types, enums, bounds, patterns, ``required``,
   ``maxItems``, ``format: date-time``): any violation is a 422 listing every problem;
4. **CEL rules** (``x-kubernetes-validations``) at every level, list items and map values included,
   transition rules with ``oldSelf`` evaluated only when the old object has the field, as the API server
   does (items of atomic lists have no ``oldSelf``); a rule that is false (or errors) is a 422.

Stricter than the API server in one way, on purpose: no validation ratcheting (an unchanged invalid
value is still refused), so a test can never pass on a value a fresh cluster would refuse.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import celpy
import jsonschema

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or bool(_DATE_TIME.match(value)))


class SchemaError(Exception):
    """The write is invalid; ``problems`` are "path: what" strings, as in the API server's message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def prune(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` without the fields the schema does not declare (and without undeclared nulls)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        kept: dict[str, Any] = {}
        for key, item in value.items():
            sub = props.get(key) if props is not None else None
            if sub is None and isinstance(extra, dict):
                sub = extra
            if sub is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                continue
            if item is None and not (sub or {}).get("nullable"):
                continue
            kept[key] = prune(item, sub) if sub is not None else item
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in value]
    return value


def default(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` with the schema's defaults filled in where fields are absent."""
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = default(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default(item, schema["items"]) for item in value]
    return value


def _as_json_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _as_json_schema(value) for key, value in schema.items() if not key.startswith("x-kubernetes")}
    if converted.pop("nullable", False) and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


@functools.cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _cel(value: Any, old: Any, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = validation["rule"]
        if "oldSelf" in rule and old is None:
            continue  # a transition rule: only when the field existed before
        activation = {"self": celpy.json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            allowed = bool(_program(rule).evaluate(activation))
        except Exception as exc:  # a CEL runtime error refuses the write too
            problems.append(f"{path}: Invalid value: rule {rule!r} failed to evaluate: {exc}")
            continue
        if not allowed:
            problems.append(f"{path}: Invalid value: {validation.get('message') or f'failed rule: {rule}'}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                _cel(value[key], old.get(key) if isinstance(old, dict) else None, sub, f"{path}.{key}", problems)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and "properties" not in schema:
            for key, item in value.items():
                _cel(item, old.get(key) if isinstance(old, dict) else None, extra, f"{path}[{key}]", problems)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):  # atomic lists: items have no oldSelf (no transition rules run)
            _cel(item, None, schema["items"], f"{path}[{index}]", problems)


def structural_problems(schema: Any, path: str = "openAPIV3Schema") -> None:
    """Raise :class:`SchemaError` for what kube-apiserver refuses in a CRD's schema itself (the CRD is invalid):
    ``properties`` next to ``additionalProperties`` ("mutual exclusive")."""
    if not isinstance(schema, dict):
        return
    if "properties" in schema and "additionalProperties" in schema:
        raise SchemaError([f"{path}.additionalProperties: Forbidden: additionalProperties and properties are "
                           "mutual exclusive"])
    for key, sub in (schema.get("properties") or {}).items():
        structural_problems(sub, f"{path}.properties[{key}]")
    for key in ("items", "additionalProperties"):
        structural_problems(schema.get(key), f"{path}.{key}")


class StructuralSchema:
    """The schema of one CRD version; :meth:`admit` is what a create, update or patch goes through."""

    def __init__(self, kind: str, schema: dict[str, Any]) -> None:
        structural_problems(schema)
        self.kind = kind
        self.schema = schema
        self._validator = jsonschema.Draft202012Validator(_as_json_schema(schema), format_checker=_FORMATS)

    def admit(self, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """The object as it would be stored (pruned, defaulted); raises :class:`SchemaError` if invalid."""
        kept = {key: obj[key] for key in ("apiVersion", "kind", "metadata") if key in obj}
        body = default(prune({k: v for k, v in obj.items() if k not in kept}, self.schema), self.schema)
        admitted = {**kept, **body}
        problems = [f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
                    for error in self._validator.iter_errors({k: v for k, v in admitted.items() if k != "metadata"})]
        for key in ("spec", "status"):
            if key in admitted:
                _cel(admitted[key], (old or {}).get(key), self.schema["properties"].get(key, {}), key, problems)
        if problems:
            raise SchemaError(sorted(problems))
        return admitted
