"""The ``spec`` of a YoloTraining: what to train, on what, with which resources.

The same model validates a CR body in the operator, a ``POST /train`` body in the API and the trainer's
input, so a spec that one component accepts, all accept. Field bounds match the CRD's OpenAPI schema
(a test compares them).
"""

from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator

from yolo_crd.delivery import DEFAULT_EXPORT_TOLERANCE, ExportFormat, SuccessCriteria
from yolo_crd.hyperparameters import ALLOWED_HYPERPARAMETERS, hyperparameter_errors
from yolo_crd.locations import OUTPUT_PATTERN, is_s3, parse_s3, source_ref
from yolo_crd.wire import WireModel

__all__ = [
    "ALLOWED_HYPERPARAMETERS",
    "ObjectStorageSpec",
    "ResourceRequirements",
    "SecretRef",
    "StorageSpec",
    "StorageVolume",
    "SuccessCriteria",
    "YoloTrainingSpec",
]

#: A Kubernetes resource quantity ("500m", "8Gi", "1.5"), as the API server parses it; never negative.
QUANTITY_PATTERN = (r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
Quantity = Annotated[StrictInt, Field(ge=0)] | Annotated[StrictStr, Field(max_length=64, pattern=QUANTITY_PATTERN)]
K8sName = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
HyperValue = StrictBool | StrictInt | StrictFloat | StrictStr

MODEL_SUFFIXES = (".pt", ".yaml", ".yml")
DATA_SUFFIXES = (".yaml", ".yml")


class ResourceRequirements(WireModel):
    """CPU, memory and extra resources for the trainer container (GPUs come from ``gpus``)."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None

    @field_validator("limits", "requests", mode="before")
    @classmethod
    def _fractions_as_strings(cls, value: Any) -> Any:
        """``cpu: 0.5`` from a JSON body becomes the quantity "0.5" (the CRD holds integers or strings)."""
        if isinstance(value, dict):
            return {k: repr(v) if isinstance(v, float) else v for k, v in value.items()}
        return value


class StorageVolume(WireModel):
    """A PersistentVolumeClaim mounted into the trainer, for datasets, weights or outputs."""

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    claim_name: K8sName
    mount_path: Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^/")]
    read_only: bool = False
    sub_path: Annotated[str, Field(max_length=1024)] | None = None

    @field_validator("sub_path")
    @classmethod
    def _sub_path_stays_inside(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError(f"subPath must be a relative path inside the volume (no leading '/', no '..'), "
                             f"got {value!r}")
        return value


class StorageSpec(WireModel):
    """Volumes of a training; ``outputVolume`` names the one where runs (weights, results) are kept."""

    volumes: list[StorageVolume] = Field(default_factory=list, max_length=16)
    output_volume: str | None = None

    @model_validator(mode="after")
    def _output_volume_is_declared(self) -> "StorageSpec":
        names = [volume.name for volume in self.volumes]
        if len(set(names)) != len(names):
            raise ValueError("storage.volumes names must be unique")
        if self.output_volume is not None and self.output_volume not in names:
            raise ValueError(f"storage.outputVolume {self.output_volume!r} is not one of storage.volumes")
        out = next((v for v in self.volumes if v.name == self.output_volume), None)
        if out is not None and out.read_only:
            raise ValueError(f"storage.outputVolume {self.output_volume!r} is mounted readOnly")
        return self


class SecretRef(WireModel):
    """A Secret in the training's namespace, by name."""

    name: K8sName


class ObjectStorageSpec(WireModel):
    """Credentials for ``s3://`` data, models and outputs: a Secret holding the standard variables
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and, optionally, ``AWS_ENDPOINT_URL`` and ``AWS_REGION``."""

    secret_ref: SecretRef


class YoloTrainingSpec(WireModel):
    """What a user asks for: a model, a dataset, the training length and size, and where it runs."""

    model: Annotated[str, Field(min_length=1, max_length=1024, description=(
        "Weights (.pt) or an architecture (.yaml), e.g. yolov8n.yaml or /weights/yolov8n.pt; weights in object "
        "storage (s3://bucket/key.pt); or an earlier training's best.pt (task/<task id>, training/<name>)."),
        examples=["yolov8n.yaml"])]
    data: Annotated[str, Field(min_length=1, max_length=1024, description=(
        "Path of the dataset YAML (inside the trainer container on a cluster), or s3://bucket/prefix/data.yaml."),
        examples=["datasets/shapes/data.yaml"])]
    epochs: Annotated[int, Field(ge=1, le=10000, description="Training epochs (ultralytics' epochs).")] = 100
    imgsz: Annotated[int, Field(ge=32, le=8192, description="Input image size in pixels (ultralytics' imgsz).")] = 640
    batch: Annotated[int, Field(ge=-1, le=4096, description=(
        "Images per batch; -1 lets ultralytics choose from GPU memory. 0 is invalid."))] = 16
    gpus: Annotated[int, Field(ge=0, le=16, description="nvidia.com/gpu to request; 0 trains on the CPU.")] = 1
    device: Annotated[str, Field(max_length=64, pattern=r"^(cpu|mps|[0-9]+(,[0-9]+)*)$")] | None = Field(
        default=None, description="Explicit ultralytics device (cpu, mps, 0, 0,1); must agree with gpus.")
    hyperparameters: dict[str, HyperValue] = Field(default_factory=dict, description=(
        "Further ultralytics train arguments from the allow-list (lr0, optimizer, patience, ...)."))
    resources: ResourceRequirements | None = Field(default=None, description=(
        "CPU and memory requests and limits for the trainer container (GPUs come from gpus); needed in a "
        "namespace with a compute ResourceQuota."))
    node_selector: dict[str, str] | None = Field(default=None, description="Node labels the trainer pod must match.")
    tolerations: list[dict[str, Any]] | None = Field(default=None, description=(
        "Kubernetes tolerations of the trainer pod (e.g. for tainted GPU nodes)."))
    affinity: dict[str, Any] | None = Field(default=None, description="Kubernetes affinity of the trainer pod.")
    priority_class_name: str | None = Field(default=None, description="PriorityClass of the trainer pod.")
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None, description="Trainer image override (admission allows only the chart's allowed images).")
    storage: StorageSpec | None = Field(default=None, description=(
        "PersistentVolumeClaims mounted into the trainer, for datasets, weights and outputs."))
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = Field(default=None, description=(
        "Seconds the training's Job may run in all before it fails with DeadlineExceeded."))
    backoff_limit: Annotated[int, Field(ge=0, le=100)] | None = Field(default=None, description=(
        "Failed trainer pods retried before the training fails (BackoffLimitExceeded)."))
    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = Field(default=None, description=(
        "Seconds after the training finishes (Succeeded or Failed) before it is deleted, with its Job and pods "
        "(locally its row, run directory and log); artifacts in object storage stay. Unset: the operator's "
        "default (the chart's trainings.ttlSecondsAfterFinished, locally --retain-days), else kept."))
    suspend: bool = Field(default=False, description=(
        "Hold the training's Job (no pod runs) until set back to false; the only field that may change."))
    queue_name: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        default=None, description="Kueue LocalQueue to admit the training through.")
    output: Annotated[str, Field(max_length=1024, pattern=OUTPUT_PATTERN)] | None = Field(
        default=None, examples=["s3://models/yolo"], description=(
            "s3://bucket/prefix where the run's artifacts (best.pt, last.pt, results.csv, args.yaml, the data "
            "YAML) are uploaded, under <prefix>/<task id>/."))
    object_storage: ObjectStorageSpec | None = Field(default=None, description=(
        "The Secret with the AWS_* variables for s3:// data, models and outputs ({\"secretRef\": {\"name\": "
        "...}}); default: the operator's objectStorage secret."))

    export: list[ExportFormat] | None = Field(default=None, max_length=2, examples=[["onnx"]], description=(
        "Formats to export best.pt to after training (onnx, torchscript); each export is validated on the val "
        "split and stored as an artifact."))
    export_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(default=None, description=(
        f"The most an export's mAP50-95 may differ from the .pt model's before the training fails with "
        f"ExportMismatch (default {DEFAULT_EXPORT_TOLERANCE})."))
    success_criteria: SuccessCriteria | None = Field(default=None, examples=[{"mAP50": 0.5}], description=(
        "Minimum final metrics (precision, recall, mAP50, mAP50-95, f1Score, each 0..1); a training that misses "
        "one fails with QualityGateNotMet, its weights kept."))

    @field_validator("export")
    @classmethod
    def _export_formats_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"export lists a format twice: {value}")
        return value

    @field_validator("model")
    @classmethod
    def _model_is_weights_or_architecture(cls, value: str) -> str:
        if source_ref(value) is not None:  # task/<id> or training/<name>: that training's best.pt
            return value
        if is_s3(value):
            parse_s3(value)
            if not value.lower().endswith(".pt"):
                raise ValueError(f"model in object storage must be weights (.pt), got {value!r}")
            return value
        if not value.lower().endswith(MODEL_SUFFIXES):
            raise ValueError(f"model must be weights (.pt) or an architecture (.yaml) (or s3://bucket/key.pt, "
                             f"task/<task id>, training/<name>), got {value!r}")
        return value

    @field_validator("data")
    @classmethod
    def _data_is_yaml(cls, value: str) -> str:
        if is_s3(value):
            parse_s3(value)
        if not value.lower().endswith(DATA_SUFFIXES):
            raise ValueError(f"data must be the path (or s3:// URI) of a dataset YAML file, got {value!r}")
        return value

    @field_validator("output")
    @classmethod
    def _output_is_a_prefix(cls, value: str | None) -> str | None:
        if value is not None:
            parse_s3(value, object_key=False)
        return value

    @field_validator("batch")
    @classmethod
    def _batch_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("batch must be -1 (automatic) or between 1 and 4096")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters_allowed(cls, value: dict[str, Any]) -> dict[str, Any]:
        errors = hyperparameter_errors(value)
        if errors:
            raise ValueError("; ".join(errors))
        return value

    @model_validator(mode="after")
    def _device_matches_gpus(self) -> "YoloTrainingSpec":
        if self.device is None:
            return self
        if self.device in ("cpu", "mps") and self.gpus > 0:
            raise ValueError(f"device {self.device!r} runs without a GPU, but gpus is {self.gpus}: set gpus to 0")
        if self.device not in ("cpu", "mps") and len(self.device.split(",")) != self.gpus:
            raise ValueError(f"device {self.device!r} names a different number of GPUs than gpus={self.gpus}")
        return self

    def export_limit(self) -> float:
        """The export tolerance in force: ``exportTolerance``, else :data:`DEFAULT_EXPORT_TOLERANCE`."""
        return DEFAULT_EXPORT_TOLERANCE if self.export_tolerance is None else self.export_tolerance

    def uses_object_storage(self) -> bool:
        """Whether the trainer reads or writes ``s3://`` objects for this spec (a source training's weights aside)."""
        return is_s3(self.data) or is_s3(self.model) or self.output is not None

    def train_device(self) -> str:
        """The ultralytics ``device`` argument: ``cpu`` for no GPU, ``0`` for one, ``0,1,...`` for more."""
        if self.device is not None:
            return self.device
        if self.gpus == 0:
            return "cpu"
        return ",".join(str(index) for index in range(self.gpus))
