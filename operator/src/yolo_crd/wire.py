"""The base model for everything that travels as JSON: snake_case in Python, camelCase on the wire."""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A pydantic model whose JSON form uses camelCase keys, as Kubernetes objects do.

    Unknown keys are rejected so that a misspelled field fails loudly instead of being ignored.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
    )

    def wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict with camelCase keys, leaving out unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(WireModel):
    """A model read back from the cluster: unknown keys (from a newer writer) are ignored, not fatal."""

    model_config = ConfigDict(extra="ignore")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float made null, so that it can travel as JSON (which has no NaN).

    Inside a merge patch a null removes the key, which is what a metric that is not a number should do.
    Inside a list (``history``) there is no merge: such keys are left out instead, since the API server
    would keep a literal null that the schema does not allow.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nulls(json_safe(item)) for item in value]
    return value


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value


def problem(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error as a user reads it: ``must be ...``, without pydantic's "Value error, "."""
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def where(loc: Sequence[Any], default: str = "spec") -> str:
    """The dotted field path of one pydantic error (``storage.volumes.0.name``), or ``default`` for the model."""
    return ".".join(str(part) for part in loc) or default


def one_line(exc: ValidationError, name: Callable[[Sequence[Any]], str] = where) -> str:
    """Every problem of a validation error in one line, ``field: problem; field: problem``, for logs, status
    messages and command lines; ``name`` says what to call a field (a flag, an environment variable)."""
    return "; ".join(f"{name(error['loc'])}: {problem(error)}" for error in exc.errors())
