"""The base model for everything that travels as JSON: snake_case in Python, camelCase on the wire."""

from typing import Any

from pydantic import BaseModel, ConfigDict
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
