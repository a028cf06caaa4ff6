"""Pure builders: a YoloTraining in, the Kubernetes objects that run it out (plain dicts).

Nothing here talks to the API server, so every rule (GPU requests, tolerations, /dev/shm, volumes,
Kueue, ownership, security context, least-privilege RBAC) is unit-tested without a cluster.
"""

from typing import Any

from yolo_crd.locations import is_s3
from yolo_crd.names import API_VERSION, GROUP, KIND, LABEL_MANAGED_BY, LABEL_NAME, LABEL_TASK_ID, MANAGED_BY, PLURAL
from yolo_crd.sources import ResolvedSource
from yolo_crd.spec import YoloTrainingSpec
from yolo_operator.settings import OperatorSettings

CONTAINER = "trainer"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: The trainer's exit code for invalid input (see yolo_trainer.errors): retrying cannot help.
EXIT_INVALID_INPUT = 2
#: The standard variables every S3 client reads; the endpoint and region may be absent from the Secret (AWS S3).
STORAGE_KEYS = (("AWS_ACCESS_KEY_ID", False), ("AWS_SECRET_ACCESS_KEY", False), ("AWS_ENDPOINT_URL", True),
                ("AWS_REGION", True))


def child_name(meta: dict[str, Any]) -> str:
    """The name of a training's children: its name and the start of its uid, within 63 characters.

    Bound to the uid, so a new training that reuses a deleted one's name never adopts the old Job, Role
    or RoleBinding while the garbage collector has not yet removed them.
    """
    return f"{meta['name'][:54].rstrip('.-')}-{meta['uid'][:8]}"  # a cut name must still end alphanumeric


def owner_reference(meta: dict[str, Any]) -> dict[str, Any]:
    """The controller reference that makes deleting the training delete its children."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def labels(meta: dict[str, Any]) -> dict[str, str]:
    """Labels linking every child to its training."""
    return {LABEL_NAME: meta["name"], LABEL_TASK_ID: meta["uid"], LABEL_MANAGED_BY: MANAGED_BY}


def _child_meta(meta: dict[str, Any], name: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": meta["namespace"], "labels": {**labels(meta), **(extra_labels or {})},
            "ownerReferences": [owner_reference(meta)]}


def build_service_account(meta: dict[str, Any]) -> dict[str, Any]:
    """The trainer's own identity."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _child_meta(meta, child_name(meta))}


def build_role(meta: dict[str, Any]) -> dict[str, Any]:
    """get and patch on the status of this one training only: a trainer cannot touch any other."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _child_meta(meta, child_name(meta)),
            "rules": [{"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "resourceNames": [meta["name"]],
                       "verbs": ["get", "patch"]}]}


def build_role_binding(meta: dict[str, Any]) -> dict[str, Any]:
    """Binds the per-training Role to the per-training ServiceAccount."""
    name = child_name(meta)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _child_meta(meta, name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": meta["namespace"]}]}


def _resources(spec: YoloTrainingSpec, settings: OperatorSettings) -> dict[str, Any]:
    # quantities as strings, as the API serialises them ("16Gi", "4", "1")
    limits = {k: str(v) for k, v in (spec.resources.limits or {}).items()} if spec.resources else {}
    requests = {k: str(v) for k, v in (spec.resources.requests or {}).items()} if spec.resources else {}
    if spec.gpus > 0:
        limits[settings.gpu_resource] = str(spec.gpus)
        requests[settings.gpu_resource] = str(spec.gpus)
    return {key: value for key, value in {"limits": limits, "requests": requests}.items() if value}


def _volumes(spec: YoloTrainingSpec, settings: OperatorSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # the root filesystem is read-only: /dev/shm for DataLoader workers, /tmp for libraries' scratch files
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
                                     {"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"},  # noqa: S108 - the pod's shm
                                    {"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - the pod's own tmp
    storage = spec.storage
    for volume in storage.volumes if storage else []:
        volumes.append({"name": volume.name, "persistentVolumeClaim": {"claimName": volume.claim_name,
                                                                        "readOnly": volume.read_only}})
        mount = {"name": volume.name, "mountPath": volume.mount_path, "readOnly": volume.read_only}
        mounts.append({**mount, "subPath": volume.sub_path} if volume.sub_path else mount)
    if storage is None or storage.output_volume is None:
        # no persistent output volume: runs survive retries of the pod only as long as the emptyDir does
        volumes.append({"name": "outputs", "emptyDir": {}})
        mounts.append({"name": "outputs", "mountPath": settings.output_mount_path})
    return volumes, mounts


def output_dir(spec: YoloTrainingSpec, settings: OperatorSettings) -> str:
    """Where the trainer writes runs: the output volume's mount path, else the scratch mount."""
    storage = spec.storage
    if storage and storage.output_volume:
        return next(v.mount_path for v in storage.volumes if v.name == storage.output_volume)
    return settings.output_mount_path


def _tolerations(spec: YoloTrainingSpec, settings: OperatorSettings) -> list[dict[str, Any]]:
    tolerations = list(spec.tolerations or [])
    covered = any(t.get("key") == settings.gpu_resource or (t.get("operator") == "Exists" and not t.get("key"))
                  for t in tolerations)
    if spec.gpus > 0 and settings.gpu_toleration and not covered:
        tolerations.append({"key": settings.gpu_resource, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def storage_env(spec: YoloTrainingSpec, settings: OperatorSettings, source: ResolvedSource | None = None
                ) -> list[dict[str, Any]]:
    """Object-storage settings for the trainer: credentials from a Secret by reference, never by value.

    The kubelet reads the Secret (``secretKeyRef``), so the operator needs no rights on Secrets. Nothing is
    added when the training touches no ``s3://`` object, or when no Secret is named (the pod's own identity,
    e.g. IRSA or workload identity, may then provide credentials).
    """
    uses = spec.uses_object_storage() or (source is not None and is_s3(source.weights))
    env: list[dict[str, Any]] = []
    if spec.output is not None:
        env.append({"name": "YOLO_TRAINER_CHECKPOINT_UPLOAD_EPOCHS", "value": str(settings.checkpoint_upload_epochs)})
    secret = spec.object_storage.secret_ref.name if spec.object_storage else settings.object_storage_secret
    if uses and secret:
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}}}
                for key, optional in STORAGE_KEYS]
    return env


def build_training_job(meta: dict[str, Any], spec: YoloTrainingSpec, settings: OperatorSettings,
                       source: ResolvedSource | None = None) -> dict[str, Any]:
    """The batch/v1 Job that runs ``python -m yolo_trainer`` for one training.

    ``source`` is the earlier training's weights when ``spec.model`` names one (``task/<id>``,
    ``training/<name>``), resolved by the operator (:mod:`yolo_crd.sources`).
    """
    name = child_name(meta)
    extra = {KUEUE_QUEUE_LABEL: spec.queue_name} if spec.queue_name else {}
    volumes, mounts = _volumes(spec, settings)
    env = [
        {"name": "YOLO_TRAINER_SPEC", "value": spec.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": "YOLO_TRAINER_SINK", "value": "kubernetes"},
        {"name": "YOLO_TRAINER_NAMESPACE", "value": meta["namespace"]},
        {"name": "YOLO_TRAINER_NAME", "value": meta["name"]},
        {"name": "YOLO_TRAINER_TASK_ID", "value": meta["uid"]},
        {"name": "YOLO_TRAINER_OUTPUT_DIR", "value": output_dir(spec, settings)},
        *storage_env(spec, settings, source),
    ]
    if source is not None:
        env.append({"name": "YOLO_TRAINER_SOURCE", "value": source.model_dump_json(exclude_none=True)})
    container: dict[str, Any] = {
        "name": CONTAINER, "image": spec.image or settings.trainer_image,
        "imagePullPolicy": settings.image_pull_policy, "command": ["python", "-m", "yolo_trainer"],
        "env": env, "volumeMounts": mounts, "resources": _resources(spec, settings),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "serviceAccountName": name, "containers": [container], "volumes": volumes,
        "securityContext": {"runAsNonRoot": True, "runAsUser": settings.run_as_user,
                            "runAsGroup": settings.run_as_user, "fsGroup": settings.run_as_user,
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    optional = {"nodeSelector": spec.node_selector, "tolerations": _tolerations(spec, settings) or None,
                "affinity": spec.affinity, "priorityClassName": spec.priority_class_name,
                "imagePullSecrets": [{"name": secret} for secret in settings.image_pull_secrets] or None}
    pod_spec.update({key: value for key, value in optional.items() if value})
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit if spec.backoff_limit is not None else settings.default_backoff_limit,
        # Kueue admits a Job by unsuspending it, so a queued Job starts suspended
        "suspend": bool(spec.suspend or spec.queue_name),
        "podFailurePolicy": {"rules": [
            # a preempted or evicted pod is retried without counting against backoffLimit (it resumes last.pt)
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            # invalid input (missing model or dataset): fail at once instead of retrying
            {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                                  "values": [EXIT_INVALID_INPUT]}},
        ]},
        "template": {"metadata": {"labels": {**labels(meta), **extra}}, "spec": pod_spec},
    }
    # spec.ttlSecondsAfterFinished deletes the training itself (and so this Job): yolo_operator.retention
    optional_job = {"activeDeadlineSeconds": spec.active_deadline_seconds,
                    "ttlSecondsAfterFinished": settings.default_ttl_seconds_after_finished}
    job_spec.update({key: value for key, value in optional_job.items() if value is not None})
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _child_meta(meta, name, extra), "spec": job_spec}
