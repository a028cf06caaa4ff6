"""Request bodies: ``POST /train`` validated by the same spec model the operator and trainer use."""

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from yolo_crd.spec import ObjectStorageSpec, StorageSpec, YoloTrainingSpec

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class TrainRequest(BaseModel):
    """The body of ``POST /train``. Bounds and the hyperparameter allow-list come from the spec model."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=1024, examples=["yolov8n.yaml"])]
    data: Annotated[str, Field(min_length=1, max_length=1024, examples=["datasets/shapes/data.yaml"])]
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    gpus: int | None = None
    device: str | None = None
    hyperparameters: dict[str, StrictBool | StrictInt | StrictFloat | StrictStr] = Field(default_factory=dict)
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=DNS_LABEL)] | None = None
    namespace: Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = None
    storage: StorageSpec | None = Field(
        default=None, description="Kubernetes backend: PVCs to mount (the CRD's spec.storage); default: the API's "
                                  "YOLO_API_DEFAULT_STORAGE")
    output: str | None = Field(
        default=None, examples=["s3://models/yolo"], description="s3://bucket/prefix where the run's artifacts are "
        "uploaded, under <prefix>/<task_id>/ (the CRD's spec.output); default: the API's YOLO_API_DEFAULT_OUTPUT")
    object_storage: ObjectStorageSpec | None = Field(
        default=None, description="Kubernetes backend: the Secret with the AWS_* variables ({\"secretRef\": {\"name\": "
                                  "...}}, the CRD's spec.objectStorage); default: the chart's objectStorage.secretName")

    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="seconds after the training finishes before it is deleted (the CRD's "
        "spec.ttlSecondsAfterFinished; locally its row, run and log); artifacts in object storage stay. Default: "
        "the chart's trainings.ttlSecondsAfterFinished, locally --retain-days; unset there: kept")

    _spec: YoloTrainingSpec = PrivateAttr()

    @model_validator(mode="after")
    def _valid_spec(self) -> "TrainRequest":
        gpus = self.gpus
        if gpus is None:  # a device alone says how many GPUs: "cpu" none, "0,1" two
            gpus = 1 if self.device is None else 0 if self.device in ("cpu", "mps") else len(self.device.split(","))
        fields: dict[str, Any] = {
            "model": self.model, "data": self.data, "epochs": self.epochs, "imgsz": self.imgsz,
            "batch": self.batch, "gpus": gpus, "device": self.device, "hyperparameters": self.hyperparameters,
            "storage": self.storage, "output": self.output, "object_storage": self.object_storage,
            "ttl_seconds_after_finished": self.ttl_seconds_after_finished,
        }
        self._spec = YoloTrainingSpec.model_validate(fields)
        return self

    def names_gpus(self) -> bool:
        """Whether the request says which GPUs (``gpus`` or ``device``); if not, the backend's default applies."""
        return self.gpus is not None or self.device is not None

    @property
    def spec(self) -> YoloTrainingSpec:
        """The validated training spec."""
        return self._spec
