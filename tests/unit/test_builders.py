"""The Job builder and the per-training RBAC: pure functions, checked without a cluster."""

import json
from typing import Any

import pytest

from yolo_crd.names import LABEL_NAME, LABEL_TASK_ID
from yolo_crd.spec import YoloTrainingSpec
from yolo_operator.builders import build_role, build_role_binding, build_service_account, build_training_job, child_name
from yolo_operator.settings import OperatorSettings

META = {"name": "shapes", "namespace": "team-a", "uid": "5b8f0c4e-2d4b-4b1e-9d7a-000000000001"}
SETTINGS = OperatorSettings(trainer_image="registry.local/trainer:1")


def job(**spec: Any) -> dict[str, Any]:
    return build_training_job(META, YoloTrainingSpec.model_validate({"model": "m.yaml", "data": "/data/d.yaml", **spec}),
                              SETTINGS)


def container(built: dict[str, Any]) -> dict[str, Any]:
    return built["spec"]["template"]["spec"]["containers"][0]


def env(built: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(built)["env"]}


def test_deterministic_name_owner_and_labels() -> None:
    built = job()
    assert built["metadata"]["name"] == "shapes-5b8f0c4e" == job()["metadata"]["name"]
    assert built["metadata"]["ownerReferences"] == [{"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining",
                                                      "name": "shapes", "uid": META["uid"], "controller": True,
                                                      "blockOwnerDeletion": True}]
    for labels in (built["metadata"]["labels"], built["spec"]["template"]["metadata"]["labels"]):
        assert labels[LABEL_NAME] == "shapes" and labels[LABEL_TASK_ID] == META["uid"]
    long_name = child_name({"name": "x" * 253, "uid": META["uid"]})
    assert len(long_name) <= 63 and long_name.endswith("-5b8f0c4e")
    dotted = child_name({"name": "a" * 53 + ".b", "uid": META["uid"]})  # the cut falls right after a '.'
    assert dotted == "a" * 53 + "-5b8f0c4e"


def test_children_of_a_reused_name_are_not_the_old_ones() -> None:
    """A new training with an old name must never adopt the old Job, Role or RoleBinding."""
    reused = {**META, "uid": "9c1d2e3f-0000-4000-8000-000000000002"}
    for build in (build_service_account, build_role, build_role_binding):
        assert build(META)["metadata"]["name"] != build(reused)["metadata"]["name"]
    assert child_name(META) != child_name(reused)


def test_gpu_requests_limits_and_default_toleration() -> None:
    built = job(gpus=2, resources={"limits": {"memory": "16Gi"}, "requests": {"cpu": 4}})
    assert container(built)["resources"] == {"limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
                                             "requests": {"cpu": "4", "nvidia.com/gpu": "2"}}
    pod = built["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert json.loads(env(built)["YOLO_TRAINER_SPEC"])["gpus"] == 2


def test_cpu_training_requests_no_gpu_and_no_toleration() -> None:
    built = job(gpus=0)
    assert "nvidia.com/gpu" not in json.dumps(container(built)["resources"])
    assert "tolerations" not in built["spec"]["template"]["spec"]


def test_user_placement_is_passed_through() -> None:
    built = job(nodeSelector={"gpu": "a100"}, tolerations=[{"key": "team", "operator": "Equal", "value": "a"}],
                affinity={"nodeAffinity": {}}, priorityClassName="high")
    pod = built["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "a100"} and pod["affinity"] == {"nodeAffinity": {}}
    assert pod["priorityClassName"] == "high" and pod["tolerations"][0]["key"] == "team" and len(pod["tolerations"]) == 2


def test_shm_and_volumes() -> None:
    built = job(storage={"volumes": [{"name": "data", "claimName": "datasets", "mountPath": "/data", "readOnly": True},
                                     {"name": "runs", "claimName": "runs", "mountPath": "/runs", "subPath": "team-a"}],
                         "outputVolume": "runs"})
    pod = built["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
    mounts = {m["name"]: m for m in container(built)["volumeMounts"]}
    assert mounts["dshm"]["mountPath"] == "/dev/shm" and mounts["runs"]["subPath"] == "team-a"
    assert env(built)["YOLO_TRAINER_OUTPUT_DIR"] == "/runs" and "outputs" not in volumes
    scratch = job()
    assert env(scratch)["YOLO_TRAINER_OUTPUT_DIR"] == "/outputs"
    assert {"name": "outputs", "emptyDir": {}} in scratch["spec"]["template"]["spec"]["volumes"]


def test_job_policy_fields() -> None:
    built = job(activeDeadlineSeconds=3600, backoffLimit=5, ttlSecondsAfterFinished=600)
    spec = built["spec"]
    assert (spec["activeDeadlineSeconds"], spec["backoffLimit"]) == (3600, 5)
    # the training's TTL deletes the training (its Job with it); the Job's own TTL is the operator's setting
    assert "ttlSecondsAfterFinished" not in spec
    with_default = build_training_job(META, YoloTrainingSpec.model_validate({"model": "m.yaml", "data": "d.yaml"}),
                                      OperatorSettings(default_ttl_seconds_after_finished=60))
    assert with_default["spec"]["ttlSecondsAfterFinished"] == 60
    assert spec["template"]["spec"]["restartPolicy"] == "Never" and spec["suspend"] is False
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert rules[1]["action"] == "FailJob" and rules[1]["onExitCodes"]["values"] == [2]
    assert job()["spec"]["backoffLimit"] == SETTINGS.default_backoff_limit


@pytest.mark.parametrize(("fields", "suspended", "queue"), [
    ({}, False, None), ({"suspend": True}, True, None), ({"queueName": "team-a-gpus"}, True, "team-a-gpus")])
def test_suspend_and_kueue(fields: dict[str, Any], suspended: bool, queue: str | None) -> None:
    built = job(**fields)
    assert built["spec"]["suspend"] is suspended
    assert built["metadata"]["labels"].get("kueue.x-k8s.io/queue-name") == queue


def test_container_runs_the_trainer_non_root() -> None:
    built = job(image="custom/trainer:2")
    pod, main = built["spec"]["template"]["spec"], container(built)
    assert main["image"] == "custom/trainer:2" and job()["spec"]["template"]["spec"]["containers"][0]["image"] == SETTINGS.trainer_image
    assert main["command"] == ["python", "-m", "yolo_trainer"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert main["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                       "readOnlyRootFilesystem": True}
    assert pod["serviceAccountName"] == "shapes-5b8f0c4e"
    variables = env(built)
    assert variables["YOLO_TRAINER_SINK"] == "kubernetes" and variables["YOLO_TRAINER_TASK_ID"] == META["uid"]
    assert (variables["YOLO_TRAINER_NAMESPACE"], variables["YOLO_TRAINER_NAME"]) == ("team-a", "shapes")


def test_trainer_rbac_is_this_one_resource_only() -> None:
    role = build_role(META)
    assert role["rules"] == [{"apiGroups": ["yolo-operator.io"], "resources": ["yolotrainings/status"],
                              "resourceNames": ["shapes"], "verbs": ["get", "patch"]}]
    binding = build_role_binding(META)
    account = build_service_account(META)
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == account["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shapes-5b8f0c4e", "namespace": "team-a"}]
    for child in (role, binding, account):
        assert child["metadata"]["ownerReferences"][0]["uid"] == META["uid"]


def test_the_trainer_runs_on_a_read_only_root_with_the_pull_secrets() -> None:
    built = build_training_job(META, YoloTrainingSpec.model_validate({"model": "m.yaml", "data": "/d.yaml"}),
                               OperatorSettings(image_pull_secrets=["regcred"]))
    assert container(built)["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container(built)["volumeMounts"]
    assert built["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert "imagePullSecrets" not in job()["spec"]["template"]["spec"]
