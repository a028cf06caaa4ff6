"""The chart's ValidatingAdmissionPolicies on a real API server (opt-in: ``pytest --with-e2e``).

The policy templates are rendered with helm and applied with kubectl, bound to the test's namespace only
(``operator.watchNamespaces``), under a release name of their own, so that nothing else on the cluster
is affected. Writers are real ServiceAccounts with real tokens: a trainer's made exactly as the operator
makes it (yolo_operator.builders), and an operator's bound to cluster-admin, since the policy must
refuse even a powerful account writing fields it does not own.
"""

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from crd import ROOT
from trainings import G, P, V, create
from waiting import eventually
from yolo_operator.builders import build_role, build_role_binding, build_service_account, child_name
from yolo_trainer.progress import ProgressTracker, epoch_metrics

pytestmark = pytest.mark.e2e

CHART = ROOT / "deploy/helm/yolo-training-operator"
TRAINER_REPOSITORY = "registry.example.com/yolo/trainer"
OPERATOR_SA = "yolo-operator"
ROW = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.4, "metrics/mAP50(B)": 0.3, "metrics/mAP50-95(B)": 0.2,
       "train/box_loss": 1.0}


@dataclass
class Policies:
    """The installed policies: their names and the namespace they guard (also the release namespace)."""

    namespace: str
    names: list[str]


def render(release: str, namespace: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/helm"), "template", release, str(CHART), "--namespace", namespace,
         "--show-only", "templates/admission-policies.yaml",
         "--set", f"operator.watchNamespaces={{{namespace}}}", "--set", f"operator.serviceAccount.name={OPERATOR_SA}",
         "--set", f"trainer.image.repository={TRAINER_REPOSITORY}", "--set", "objectStorage.secretName=s3-default",
         "--set", "objectStorage.allowedSecrets={team-*}", "--set", "trainer.allowedPriorityClasses={high}"],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=False)


def training_manifest(name: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": f"{G}/{V}", "kind": "YoloTraining", "metadata": {"name": name},
                       "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "gpus": 0, **spec}})


@pytest.fixture
def policies(kube: client.ApiClient, namespace: str) -> Iterator[Policies]:
    docs = render(f"pol-{uuid.uuid4().hex[:6]}", namespace)
    manifest = yaml.safe_dump_all(docs)
    applied = kubectl("apply", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    names = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "ValidatingAdmissionPolicy"]
    try:
        admission = client.AdmissionregistrationV1Api(kube)

        def checked(name: str) -> Any:
            policy = admission.read_validating_admission_policy(name)
            done = policy.status and policy.status.observed_generation == policy.metadata.generation
            return done and (policy.status.type_checking or client.V1TypeChecking())

        for name in names:  # the API server type-checks every expression against the CRD's schema
            assert not eventually(lambda n=name: checked(n), timeout=30).expression_warnings, name
        # in force once the API server's informers have the policy and its binding: a dry run is refused
        eventually(lambda: "is not allowed" in kubectl(
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            stdin=training_manifest("probe", image="elsewhere.example/x:1")).stderr, timeout=30, interval=0.5)
        created = kubectl("apply", "-n", namespace, "-f", "-", stdin=training_manifest("probe"))
        assert created.returncode == 0, created.stderr
        # the operator's name with every right (system:masters), writing a trainer field in a dry run
        eventually(lambda: "may not change trainer-owned currentEpoch" in kubectl(
            "patch", "-n", namespace, f"{P}.{G}/probe", "--subresource=status", "--type=merge", "--dry-run=server",
            "-p", '{"status": {"currentEpoch": 1}}', f"--as=system:serviceaccount:{namespace}:{OPERATOR_SA}",
            "--as-group=system:masters").stderr, timeout=30, interval=0.5)
        yield Policies(namespace, names)
    finally:
        kubectl("delete", "--ignore-not-found", "-f", "-", stdin=manifest)


def token_client(kube: client.ApiClient, namespace: str, account: str) -> client.CustomObjectsApi:
    """A client that authenticates only with ``account``'s token (no client certificate)."""
    token = subprocess.run(["kubectl", "create", "token", account, "-n", namespace, "--duration=10m"],
                           capture_output=True, text=True, check=True).stdout.strip()
    config = client.Configuration()
    config.host = kube.configuration.host
    config.ssl_ca_cert = kube.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    return client.CustomObjectsApi(client.ApiClient(config))


def trainer_of(kube: client.ApiClient, training: dict[str, Any]) -> client.CustomObjectsApi:
    """The trainer's identity, made as the operator makes it: ServiceAccount, Role and RoleBinding."""
    meta = {**training["metadata"]}
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(meta["namespace"], build_service_account(meta))
    rbac.create_namespaced_role(meta["namespace"], build_role(meta))
    rbac.create_namespaced_role_binding(meta["namespace"], build_role_binding(meta))
    return token_client(kube, meta["namespace"], child_name(meta))


@pytest.fixture
def operator_account(kube: client.ApiClient, policies: Policies) -> Iterator[client.CustomObjectsApi]:
    """The operator's ServiceAccount in the release namespace, bound to cluster-admin."""
    client.CoreV1Api(kube).create_namespaced_service_account(policies.namespace, {"metadata": {"name": OPERATOR_SA}})
    binding = f"{policies.namespace}-operator-admin"
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_cluster_role_binding({
        "metadata": {"name": binding},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": policies.namespace}]})
    try:
        yield token_client(kube, policies.namespace, OPERATOR_SA)
    finally:
        rbac.delete_cluster_role_binding(binding)


def patch_status(api: client.CustomObjectsApi, namespace: str, name: str, status: dict[str, Any]) -> Any:
    return api.patch_namespaced_custom_object_status(G, V, namespace, P, name, {"status": status})


def refused(call: Any) -> client.ApiException:
    with pytest.raises(client.ApiException) as error:
        call()
    assert error.value.status == 403, error.value.body
    return error.value


def test_a_trainer_writes_only_trainer_fields_of_its_own_training(kube: client.ApiClient, policies: Policies) -> None:
    ns = policies.namespace
    # the name is cut to 54 characters and loses a trailing '-' in the ServiceAccount's name: the policy recomputes it
    for name in ("shapes", "x" * 53 + "-tail"):
        training = create(kube, ns, name, gpus=0)
        trainer = trainer_of(kube, training)
        tracker = ProgressTracker(3)
        patch_status(trainer, ns, name, tracker.started(0, 3))  # the first write: the training had no status
        epoch = tracker.epoch_done(epoch_metrics(1, ROW), 3, last=False)
        assert epoch is not None and {"currentEpoch", "progress", "metrics"} <= set(epoch)
        patch_status(trainer, ns, name, epoch)
        for foreign in ({"phase": "Succeeded"}, {"conditions": [{"type": "Succeeded", "status": "True"}]}):
            error = refused(lambda t=trainer, n=name, f=foreign: patch_status(t, ns, n, {**f, "currentEpoch": 2}))
            assert f"may not change operator-owned {next(iter(foreign))}" in error.body, error.body
            assert f"system:serviceaccount:{ns}:{child_name(training['metadata'])}" in error.body
        current = client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, ns, P, name)["status"]
        assert current["currentEpoch"] == 1 and "phase" not in current


def test_the_operator_writes_only_operator_fields(kube: client.ApiClient, policies: Policies,
                                                  operator_account: client.CustomObjectsApi) -> None:
    ns = policies.namespace
    create(kube, ns, "shapes", gpus=0)
    patch_status(operator_account, ns, "shapes", {"phase": "Pending", "reason": "Scheduling"})  # from no status
    patch_status(operator_account, ns, "shapes", {"phase": "Running", "jobName": "shapes-1"})
    error = refused(lambda: patch_status(operator_account, ns, "shapes", {"currentEpoch": 2}))
    assert "may not change trainer-owned currentEpoch" in error.body, error.body
    # kopf keeps its progress in annotations of the main resource: the status policy does not apply there
    operator_account.patch_namespaced_custom_object(G, V, ns, P, "shapes", {
        "metadata": {"annotations": {"yolo-operator.io/last-handled": "{}"}}})
    # a trainer-owned field the trainer set stays as it is when the operator writes its own
    trainer = trainer_of(kube, client.CustomObjectsApi(kube).get_namespaced_custom_object(G, V, ns, P, "shapes"))
    patch_status(trainer, ns, "shapes", {"stage": "training", "currentEpoch": 1})
    patch_status(operator_account, ns, "shapes", {"phase": "Succeeded"})
    error = refused(lambda: patch_status(operator_account, ns, "shapes", {"stage": None}))
    assert "may not change trainer-owned stage" in error.body, error.body


def test_trainings_use_only_allowed_images_secrets_and_priority_classes(policies: Policies) -> None:
    ns = policies.namespace

    def apply(name: str, **spec: Any) -> subprocess.CompletedProcess[str]:
        return kubectl("apply", "-n", ns, "-f", "-", stdin=training_manifest(name, **spec))

    evil = apply("evil", image=f"{TRAINER_REPOSITORY}-evil:1")
    assert evil.returncode != 0
    assert f"spec.image {TRAINER_REPOSITORY}-evil:1 is not allowed: allowed images are {TRAINER_REPOSITORY}" \
        in evil.stderr, evil.stderr
    for name, image in (("tagged", f"{TRAINER_REPOSITORY}:1.2"), ("pinned", f"{TRAINER_REPOSITORY}@sha256:" + "a" * 64),
                        ("default", None)):
        ok = apply(name, **({"image": image} if image else {}))
        assert ok.returncode == 0, ok.stderr

    secret = apply("secret", objectStorage={"secretRef": {"name": "admin-credentials"}})
    assert secret.returncode != 0
    assert "spec.objectStorage.secretRef admin-credentials is not allowed: allowed Secrets are team-*, s3-default" \
        in secret.stderr, secret.stderr
    for name, allowed in (("team", "team-a"), ("default-secret", "s3-default")):
        ok = apply(name, objectStorage={"secretRef": {"name": allowed}})
        assert ok.returncode == 0, ok.stderr

    low = apply("low", priorityClassName="system-node-critical")
    assert low.returncode != 0
    assert "spec.priorityClassName system-node-critical is not allowed: allowed PriorityClasses are high" \
        in low.stderr, low.stderr
    high = apply("high", priorityClassName="high")
    assert high.returncode == 0, high.stderr


def test_a_sweeps_template_is_held_to_the_same_lists(policies: Policies) -> None:
    def sweep(name: str, **template: Any) -> str:
        return json.dumps({"apiVersion": f"{G}/{V}", "kind": "YoloSweep", "metadata": {"name": name}, "spec": {
            "template": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "gpus": 0, **template},
            "parameters": {"lr0": {"values": [0.01]}}, "objective": {"metric": "mAP50-95"}, "maxTrials": 1}})

    evil = kubectl("apply", "-n", policies.namespace, "-f", "-", stdin=sweep("evil", image=f"{TRAINER_REPOSITORY}-evil:1"))
    assert evil.returncode != 0
    assert f"spec.template.image {TRAINER_REPOSITORY}-evil:1 is not allowed" in evil.stderr, evil.stderr
    secret = kubectl("apply", "-n", policies.namespace, "-f", "-",
                     stdin=sweep("secret", objectStorage={"secretRef": {"name": "admin-credentials"}}))
    assert "spec.template.objectStorage.secretRef admin-credentials is not allowed" in secret.stderr, secret.stderr
    ok = kubectl("apply", "-n", policies.namespace, "-f", "-", stdin=sweep("fine", image=f"{TRAINER_REPOSITORY}:1.2"))
    assert ok.returncode == 0, ok.stderr
