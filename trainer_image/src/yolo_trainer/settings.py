"""The trainer's settings, from ``YOLO_TRAINER_*`` environment variables (set by the operator or the API)."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yolo_crd.sources import ResolvedSource
from yolo_crd.spec import YoloTrainingSpec


class TrainerSettings(BaseSettings):
    """Everything one trainer process needs: the spec, where to report, where to write outputs."""

    model_config = SettingsConfigDict(env_prefix="YOLO_TRAINER_", extra="ignore")

    spec: YoloTrainingSpec | None = Field(default=None, description="the training spec as JSON (camelCase)")
    task_id: str | None = Field(default=None, description="the task id (the resource's uid)")
    name: str | None = Field(default=None, description="the YoloTraining's name")
    namespace: str | None = Field(default=None, description="the YoloTraining's namespace")
    sink: Literal["kubernetes", "local", "log"] = "log"
    state_db: Path | None = Field(default=None, description="SQLite state file of the local sink")
    output_dir: Path = Field(default=Path("runs"), description="root under which each run gets its directory")
    allow_downloads: bool = Field(default=False, description="let ultralytics fetch missing pretrained weights")
    report_interval: float = Field(default=1.0, ge=0.0, description="least seconds between status writes")
    final_report_timeout: float = Field(default=120.0, ge=0.0, description="seconds to keep retrying the final status")
    source: ResolvedSource | None = Field(
        default=None, description="the earlier training's weights when model is task/<id> or training/<name> (JSON, "
                                  "set by the operator or the local API)")
    checkpoint_upload_epochs: int = Field(
        default=1, ge=1, description="with an output in object storage: upload last.pt every this many epochs")
    storage_retry_seconds: float = Field(
        default=120.0, ge=0.0, description="keep retrying unreachable object storage this long before failing with "
                                           "StorageUnavailable")
    follow_results_csv: bool | None = Field(
        default=None, description="report from results.csv instead of callbacks (default: when gpus > 1)"
    )
    plots: bool = Field(
        default=True, description="draw ultralytics' plots (curves, confusion matrices, batches) and keep them as "
                                  "artifacts; false saves a few seconds per training, minutes on very large datasets")

    def run_id(self) -> str:
        """The run directory's name: the task id, unique even when a resource name is reused."""
        return self.task_id or self.name or "train"
