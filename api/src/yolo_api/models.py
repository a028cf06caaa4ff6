"""Request bodies: ``POST /train`` is the contract's spec model plus what only the API adds.

:class:`TrainRequest` derives from :class:`yolo_crd.spec.YoloTrainingSpec`, so its fields, bounds, validators and
descriptions (in OpenAPI too) are the spec's and cannot drift. The API adds ``name`` and ``namespace``, and
lets ``gpus`` be left out (the backend then decides: :meth:`TrainRequest.names_gpus`). Keys are snake_case on
this wire (``object_storage``, ``ttl_seconds_after_finished``), as the API has always taken them; the CRD's
camelCase spellings (``objectStorage``) are accepted too. Nested objects keep the CRD's camelCase
(``object_storage: {"secretRef": ...}``).

:class:`SweepRequest` (``POST /sweeps``) derives in the same way from :class:`yolo_crd.sweep.YoloSweepSpec`: its
``template`` is a ``POST /train`` body, validated exactly as one, and the sweep's own fields come in either
spelling (``max_trials`` or ``maxTrials``).
"""

from typing import Annotated, Any

from pydantic import AliasChoices, AliasGenerator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from yolo_crd.names import SWEEP_NAME_MAX
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.sweep import YoloSweepSpec
from yolo_crd.wire import problem

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _either_spelling(name: str) -> AliasChoices:
    """``object_storage`` or ``objectStorage``; OpenAPI names the first."""
    return AliasChoices(name, to_camel(name))


class TrainRequest(YoloTrainingSpec):
    """The body of ``POST /train``: a training spec, its name and namespace; see the module docstring."""

    model_config = ConfigDict(alias_generator=AliasGenerator(validation_alias=_either_spelling,
                                                             serialization_alias=lambda name: name))

    gpus: Annotated[int, Field(ge=0, le=16)] | None = Field(default=None, description=(  # type: ignore[assignment]
        "nvidia.com/gpu to request; 0 trains on the CPU. Left out: what device names (cpu: 0, 0,1: 2), else the "
        "backend's default (a cluster: 1; locally: 1 where torch sees CUDA, else 0)."))
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=DNS_LABEL)] | None = Field(
        default=None, description="the training's name (a DNS label); default: generated")
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = Field(
        default=None, description="Kubernetes backend: the namespace to train in; default: the API's")

    _spec: YoloTrainingSpec = PrivateAttr()

    @model_validator(mode="after")
    def _device_matches_gpus(self) -> "TrainRequest":
        """Build the spec (replacing the spec's check of the same name, which the spec runs itself)."""
        gpus = self.gpus
        if gpus is None:  # a device alone says how many GPUs: "cpu" none, "0,1" two
            gpus = 1 if self.device is None else 0 if self.device in ("cpu", "mps") else len(self.device.split(","))
        fields: dict[str, Any] = {name: getattr(self, name) for name in YoloTrainingSpec.model_fields}
        self._spec = YoloTrainingSpec.model_validate({**fields, "gpus": gpus})
        return self

    def names_gpus(self) -> bool:
        """Whether the request says which GPUs (``gpus`` or ``device``); if not, the backend's default applies."""
        return self.gpus is not None or self.device is not None

    @property
    def spec(self) -> YoloTrainingSpec:
        """The validated training spec (without the API's ``name`` and ``namespace``)."""
        return self._spec


class SweepRequest(YoloSweepSpec):
    """The body of ``POST /sweeps``: a sweep spec whose template is a ``POST /train`` body, plus the sweep's name
    and namespace; see the module docstring."""

    model_config = ConfigDict(alias_generator=AliasGenerator(validation_alias=_either_spelling,
                                                             serialization_alias=lambda name: name))

    template: TrainRequest = Field(description=(
        "the trials' training spec, as POST /train takes it (without name and namespace)"))
    name: Annotated[str, Field(min_length=1, max_length=SWEEP_NAME_MAX, pattern=DNS_LABEL)] | None = Field(
        default=None, description="the sweep's name (a DNS label; its trials are <name>-000, ...); default: generated")
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = Field(
        default=None, description="Kubernetes backend: the namespace of the sweep and its trials; default: the API's")

    @model_validator(mode="after")
    def _parameters_usable(self) -> "SweepRequest":
        """Replaces the spec's check of the same name: the same check, over the template's training spec."""
        if self.template.name is not None or self.template.namespace is not None:
            raise ValueError("template: name and namespace belong to the sweep (the top of the body); trials are "
                             "named <sweep>-000, <sweep>-001, ...")
        self.sweep(self.template.spec.gpus)
        return self

    def sweep(self, default_gpus: int) -> YoloSweepSpec:
        """The sweep spec; a template that names neither ``gpus`` nor ``device`` gets ``default_gpus`` (the
        backend's). Raises ValueError naming each field that is wrong."""
        template = self.template.spec if self.template.names_gpus() else \
            self.template.spec.model_copy(update={"gpus": default_gpus})
        fields = {name: getattr(self, name) for name in YoloSweepSpec.model_fields if name != "template"}
        try:
            return YoloSweepSpec.model_validate({**fields, "template": template})
        except ValidationError as exc:
            raise ValueError("; ".join(problem(error) for error in exc.errors())) from None
