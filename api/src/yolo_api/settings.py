"""The API's settings, one pydantic-settings class with the ``YOLO_API_`` prefix."""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from yolo_crd.spec import StorageSpec


def in_cluster() -> bool:
    """True inside a Kubernetes pod (the service-account environment is present)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def default_state_dir() -> Path:
    """Where the local backend keeps its state unless told: one per user, whatever the working directory
    (``$XDG_STATE_HOME/yolo-training``, by default ``~/.local/state/yolo-training``). ``yoloctl`` finds the
    generated token there, so the two meet without flags."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "yolo-training"


def path_list(value: Any) -> Any:
    """A list of paths from the environment: JSON (``["/a", "/b"]``) or ``os.pathsep``-separated (``/a:/b``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part for part in text.split(os.pathsep) if part.strip()]


class ApiSettings(BaseSettings):
    """Everything the HTTP API needs; defaults suit the one-machine local mode."""

    model_config = SettingsConfigDict(env_prefix="YOLO_API_", extra="ignore")

    backend: Literal["local", "kubernetes"] = Field(
        default_factory=lambda: "kubernetes" if in_cluster() else "local",
        description="kubernetes inside a cluster, local otherwise")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # local backend
    state_dir: Path = Field(default_factory=default_state_dir, description="SQLite state, logs and run outputs (local)")
    max_parallel: int = Field(default=1, ge=1, le=64, description="trainings run at once (local)")
    retain_days: float | None = Field(
        default=None, gt=0, description="local: finished tasks are deleted this many days after they finish, with "
                                        "their run directory (weights included) and log; unset keeps them")
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="where model and data paths may point (local), as a path list "
                                          "(/data:/models) or JSON; default: the working directory and the state dir")
    local_gpus: int | None = Field(default=None, ge=0, le=64, description="CUDA devices trainings may use (local); "
                                   "default: what torch sees in the trainer's interpreter")
    trainer_python: str = Field(default=sys.executable, description="interpreter that runs python -m yolo_trainer")
    poll_interval: float = Field(default=0.5, gt=0, description="seconds between trainer-process checks (local)")
    trainer_allow_downloads: bool = Field(
        default=False, validation_alias=AliasChoices("trainer_allow_downloads", "YOLO_TRAINER_ALLOW_DOWNLOADS"),
        description="local: let trainers download pretrained weights named bare (yolov8n.pt); read from "
                    "YOLO_TRAINER_ALLOW_DOWNLOADS, the trainer's own variable, and handed to every trainer")
    # kubernetes backend
    namespace: str | None = Field(default=None, description="namespace to create in and watch; None: all")
    default_namespace: str = "default"
    watch_timeout: int = Field(default=300, ge=1, description="seconds before a watch is renewed")
    watch_read_timeout: float = Field(
        default=120.0, gt=0, description="seconds a watch may stay silent before it is re-opened (the API server "
                                         "sends a bookmark about every minute)")
    watch_stale_seconds: float = Field(
        default=180.0, gt=0, description="/readyz fails when the index has not heard from the API server for longer")
    list_page_size: int = Field(default=500, ge=1, description="trainings per page of the index's LIST")
    lookup_negative_seconds: float = Field(
        default=5.0, gt=0, description="how long an id the API server does not know is answered 404 from memory")
    lookups_per_second: int = Field(default=20, ge=1, description="API-server lookups of index misses, at most")
    full_cache_seconds: float = Field(default=10.0, gt=0, description="how long a fetched per-epoch history is reused")
    default_storage: StorageSpec | None = Field(
        default=None, description="volumes (PVCs) mounted into trainings whose POST /train names none, as JSON "
                                  "in the CRD's camelCase, e.g. {\"volumes\": [{\"name\": \"data\", \"claimName\": "
                                  "\"datasets\", \"mountPath\": \"/data\"}], \"outputVolume\": \"data\"}")
    reaped_retention_seconds: float = Field(
        default=86400, ge=0, description="how long the API still answers the task id of a training the operator "
                                         "deleted after its TTL (the chart's trainings.ttlSecondsAfterFinished)")
    # what POST /train may reference (yolo_crd.admission; the chart sets them as the operator's): None is unchecked
    allowed_images: list[str] | None = Field(
        default=None, description="image prefixes a training's image may use (a prefix ending in / allows every "
                                  "image under it, any other one repository with any :tag or @digest); None: any")
    allowed_secrets: list[str] | None = Field(
        default=None, description="Secrets object_storage.secretRef may name (an entry ending in * is a name "
                                  "prefix); an empty list allows none; None: any")
    allowed_priority_classes: list[str] | None = Field(
        default=None, description="PriorityClasses a training may name (an entry ending in * is a name prefix); "
                                  "None or an empty list: any")
    # object storage (docs/storage.md); credentials are boto3's own AWS_* variables, never a YOLO_API_ setting
    default_output: str | None = Field(
        default=None, description="s3://bucket/prefix for the artifacts of trainings whose POST /train names no "
                                  "output (both backends)")
    s3_public_endpoint: str | None = Field(
        default=None, description="the object-storage endpoint as clients reach it, for presigned download URLs "
                                  "(default: AWS_ENDPOINT_URL, as the API reaches it)")
    artifact_url_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600,
                                      description="lifetime of a presigned artifact download URL")
    # authentication (yolo_api.auth)
    auth: Literal["kubernetes", "token", "none"] | None = Field(
        default=None, description="kubernetes (TokenReview + SubjectAccessReview), token (one static bearer token) or "
                                  "none (explicitly off); default: kubernetes with that backend, token otherwise")
    auth_token: SecretStr | None = Field(default=None, description="the static token (auth=token)")
    auth_token_file: Path | None = Field(
        default=None, description="file holding the static token; default <state_dir>/api-token, created if absent")
    auth_cache_seconds: float = Field(default=60.0, gt=0, le=3600, description="how long a review is trusted")
    metrics_public: bool = Field(default=False, description="serve /metrics without a token")
    metrics_retention_seconds: float = Field(
        default=900.0, ge=0, description="per-training series stay this long after a training ends, then go")
    # live updates (GET /task_status/{id}/events)
    sse_poll_interval: float = Field(default=0.5, gt=0, description="re-read period for backends without change "
                                                                     "notifications (local)")
    sse_ping_seconds: float = Field(default=15.0, gt=0, description="keep-alive comment period on open streams")
    # HTTP
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="largest accepted request body")
    access_log: bool = False

    _split_roots = field_validator("allowed_roots", mode="before")(path_list)

    def auth_mode(self) -> str:
        """The authentication mode in force (see ``auth``)."""
        return self.auth or ("kubernetes" if self.backend == "kubernetes" else "token")

    def roots(self) -> list[Path]:
        """The resolved allowed roots for model and data paths in local mode."""
        roots = self.allowed_roots or [Path.cwd(), self.state_dir]
        return [root.resolve() for root in roots]
