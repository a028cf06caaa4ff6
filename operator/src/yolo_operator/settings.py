"""The operator's settings, one pydantic-settings class with the ``YOLO_OPERATOR_`` prefix."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Defaults for the Jobs the operator builds, and kopf's tuning."""

    model_config = SettingsConfigDict(env_prefix="YOLO_OPERATOR_", extra="ignore", populate_by_name=True)

    trainer_image: str = Field(default="ghcr.io/yolo-training-operator/trainer:0.1.0", description="trainer image")
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets (in each training's namespace) for pulling the trainer image")
    default_backoff_limit: int = Field(default=3, ge=0, description="Job retries when a spec sets none")
    default_ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    gpu_resource: str = Field(default="nvidia.com/gpu", description="extended resource requested per GPU")
    gpu_toleration: bool = Field(default=True, description="tolerate the GPU taint when gpus > 0")
    shm_size: str = Field(default="2Gi", description="size of the in-memory /dev/shm for DataLoader workers")
    output_mount_path: str = "/outputs"
    object_storage_secret: str | None = Field(
        default=None, description="Secret (in each training's namespace) with the AWS_* variables for s3:// data, "
                                  "models and outputs, when a training names no spec.objectStorage.secretRef")
    checkpoint_upload_epochs: int = Field(
        default=1, ge=1, description="trainings with an output in object storage upload last.pt every this many epochs")
    run_as_user: int = 1000
    # what a training may reference (yolo_crd.admission; the chart always sets the first two): None is unchecked
    allowed_images: list[str] | None = Field(
        default=None, description="image prefixes a spec.image may use (a prefix ending in / allows every image "
                                  "under it, any other one repository with any :tag or @digest); None: any")
    allowed_secrets: list[str] | None = Field(
        default=None, description="Secrets a spec.objectStorage.secretRef may name (an entry ending in * is a name "
                                  "prefix); an empty list allows none; None: any")
    allowed_priority_classes: list[str] | None = Field(
        default=None, description="PriorityClasses a spec.priorityClassName may name (an entry ending in * is a "
                                  "name prefix); None or an empty list: any")
    training_ttl_seconds: int | None = Field(
        default=None, ge=0, description="seconds after a YoloTraining finishes before the operator deletes it, with "
                                        "its Job and pods; artifacts stay. None: never")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus /metrics port (0: off)")
    # kopf tuning
    watch_server_timeout: int = Field(default=300, ge=1, description="seconds before a watch is renewed")
    watch_client_timeout: int = Field(default=330, ge=1)
    worker_idle_seconds: float = Field(
        default=0.1, gt=0,
        validation_alias=AliasChoices("YOLO_OPERATOR_WORKER_IDLE_SECONDS", "YOLO_OPERATOR_BATCH_WINDOW"),
        description="seconds kopf keeps a training's event worker alive with nothing to do, then lets it go "
                    "(settings.queueing.idle_timeout; kopf batches nothing by time). YOLO_OPERATOR_BATCH_WINDOW, "
                    "its former name, still sets it")
    resync_seconds: float = Field(
        default=300.0, gt=0, description="every unfinished training is re-synced once per this period (missed "
                                         "events); 5 minutes keeps 10,000 trainings at ~100 API requests/s")
