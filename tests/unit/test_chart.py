"""The Helm chart: lint, render, validate against the Kubernetes schemas, least privilege, hardening."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from crd import ROOT, openapi_schema, pruned_paths
from yolo_api.auth_kubernetes import PERMISSIONS as AUTH_PERMISSIONS
from yolo_api.backends.kubernetes import PERMISSIONS as API_PERMISSIONS
from yolo_api.models import TrainRequest
from yolo_crd.spec import YoloTrainingSpec
from yolo_operator.gateway import PERMISSIONS as OPERATOR_PERMISSIONS

CHART = ROOT / "deploy/helm/yolo-training-operator"
EXAMPLES = ROOT / "deploy/examples"
VALUE_FILES = [None, EXAMPLES / "values-gpu.yaml", EXAMPLES / "values-cpu.yaml"]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(BIN))
    if found is None:
        pytest.fail(f"{name} is not installed: run `make install` (it puts {name} into .venv/bin)")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=False)


def render(values: Path | None = None, *extra: str) -> list[dict[str, Any]]:
    args = ["template", "yolo", str(CHART), "--namespace", "yolo-system", *extra]
    if values:
        args += ["-f", str(values)]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("values", VALUE_FILES, ids=["default", "gpu", "cpu"])
def test_lint_and_validate_against_kubernetes_schemas(values: Path | None, tmp_path: Path) -> None:
    lint = helm("lint", str(CHART), *(["-f", str(values)] if values else []))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(render(values)))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", "1.31.0", str(manifest)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                                      "spec": {"replicas": "two", "selector": {}, "template": {}}}))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", "1.31.0", str(broken)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0


def rules_of(docs: list[dict[str, Any]], name_suffix: str) -> list[dict[str, Any]]:
    return [rule for doc in docs if doc["kind"] in ("ClusterRole", "Role")
            and doc["metadata"]["name"].endswith(name_suffix) for rule in doc["rules"]]


def covers(rules: list[dict[str, Any]], group: str, resource: str, verbs: tuple[str, ...]) -> bool:
    granted = {verb for rule in rules if group in rule["apiGroups"] and resource in rule["resources"]
               for verb in rule["verbs"]}
    return set(verbs) <= granted


@pytest.mark.parametrize("values", VALUE_FILES, ids=["default", "gpu", "cpu"])
def test_rbac_has_no_wildcards_and_covers_every_call(values: Path | None) -> None:
    docs = render(values)
    for doc in docs:
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), (doc["metadata"]["name"], rule)
    operator = rules_of(docs, "-operator")
    for group, resource, verbs in OPERATOR_PERMISSIONS:  # derived from the gateway's calls
        assert covers(operator, group, resource, verbs), (group, resource, verbs)
    framework = rules_of(docs, "-operator-framework")
    assert covers(framework, "", "namespaces", ("list", "watch"))
    api = rules_of(docs, "-api")
    for group, resource, verbs in API_PERMISSIONS:
        assert covers(api, group, resource, verbs)
    for group, resource, verbs in AUTH_PERMISSIONS:  # TokenReview + SubjectAccessReview (auth.mode=kubernetes)
        assert covers(rules_of(docs, "-api-auth"), group, resource, verbs)
    assert not covers(api, "yolo-operator.io", "yolotrainings/status", ("patch",))  # the API never writes status
    assert covers(api, "yolo-operator.io", "yolosweeps", ("get", "list", "watch", "create", "patch"))  # /sweeps
    assert not covers(api, "yolo-operator.io", "yolosweeps/status", ("patch",))
    assert not covers(api, "batch", "jobs", ("create",))


def test_watched_namespaces_bind_per_namespace() -> None:
    docs = render(EXAMPLES / "values-gpu.yaml")
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-operator")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"].endswith("-operator")]
    [operator] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator")]
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args


def test_pods_are_hardened_and_the_operator_is_a_single_recreated_replica() -> None:
    docs = render()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"yolo-yolo-training-operator-operator", "yolo-yolo-training-operator-api"}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                    "capabilities": {"drop": ["ALL"]}}
    operator = deployments["yolo-yolo-training-operator-operator"]
    assert operator["spec"]["replicas"] == 1 and operator["spec"]["strategy"] == {"type": "Recreate"}
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["YOLO_OPERATOR_TRAINER_IMAGE"] == "ghcr.io/yolo-training-operator/trainer:0.1.0"
    api = deployments["yolo-yolo-training-operator-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" and api["args"][:2] == ["--backend", "kubernetes"]


@pytest.mark.parametrize("setting", ["operator.imagee.tag=x", "api.replica=3", "trainer.shmSize=lots"])
def test_the_values_schema_rejects_misspelled_keys_and_bad_values(setting: str) -> None:
    result = helm("template", "yolo", str(CHART), "--set", setting)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr


def test_every_values_key_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":") or stripped.startswith("-"):
            continue
        if line.startswith("    requests") or line.startswith("    limits"):
            continue
        above = index - 1
        while lines[above].strip().startswith("#") and not lines[above].strip().startswith("# --"):
            above -= 1  # helm-docs continuation lines
        assert lines[above].strip().startswith("# --"), f"values.yaml line {index + 1} has no '# --' comment"


@pytest.mark.parametrize("sample", ["yolotraining.yaml", "yolotraining-s3.yaml"])
def test_the_samples_are_valid(sample: str) -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / sample).read_text()))
    for training in [d for d in docs if d["kind"] == "YoloTraining"]:
        jsonschema.validate(training, openapi_schema())
        assert pruned_paths(training["spec"], openapi_schema()["properties"]["spec"]) == []
        YoloTrainingSpec.model_validate(training["spec"])
    TrainRequest.model_validate(json.loads((EXAMPLES / "train-body.json").read_text()))


@pytest.mark.parametrize(("spec", "problem"), [
    ({"epochs": 0}, "minimum"), ({"imgsz": 99999}, "maximum"), ({"gpus": -1}, "minimum"), ({"batch": "big"}, "type"),
    ({"storage": {"volumes": [{"name": "Bad_Name", "claimName": "c", "mountPath": "/d"}]}}, "pattern"),
])
def test_the_crd_schema_rejects_out_of_range_values(spec: dict[str, Any], problem: str) -> None:
    body = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": {"name": "x"},
            "spec": {"model": "m.yaml", "data": "d.yaml", **spec}}
    with pytest.raises(jsonschema.ValidationError) as rejected:
        jsonschema.validate(body, openapi_schema())
    assert rejected.value.validator == problem


def test_unknown_spec_fields_are_not_declared() -> None:
    # the API server drops (kubectl's strict field validation: rejects) fields the schema does not declare
    spec = {"model": "m.yaml", "data": "d.yaml", "epochz": 3, "storage": {"volume": []}}
    assert pruned_paths(spec, openapi_schema()["properties"]["spec"]) == [".epochz", ".storage.volume"]


@pytest.mark.parametrize("dockerfile", ["operator/Dockerfile", "api/Dockerfile", "trainer_image/Dockerfile"])
def test_dockerfiles_lint_clean(dockerfile: str) -> None:
    result = subprocess.run([tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / dockerfile)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / dockerfile).read_text()
    assert "USER 10001" in text or "USER 1000" in text  # never root


def test_auth_modes_render_their_settings() -> None:
    default = render()
    [api] = [d for d in default if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["YOLO_API_AUTH"]["value"] == "kubernetes" and env["YOLO_API_METRICS_PUBLIC"]["value"] == "false"
    token = render(None, "--set", "api.auth.mode=token", "--set", "api.auth.tokenSecret.name=api-token")
    [api] = [d for d in token if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["YOLO_API_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "api-token", "key": "token"}
    assert not rules_of(token, "-api-auth")  # no review rights without delegated auth
    missing = helm("template", "yolo", str(CHART), "--set", "api.auth.mode=token")
    assert missing.returncode != 0 and "tokenSecret.name is required" in missing.stderr


def test_monitoring_is_off_by_default_and_renders_when_asked() -> None:
    assert not [d for d in render() if d["kind"] in ("ServiceMonitor", "ConfigMap")]
    docs = render(None, "--set", "monitoring.serviceMonitor.enabled=true",
                  "--set", "monitoring.grafanaDashboard.enabled=true")
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"yolo-yolo-training-operator-operator", "yolo-yolo-training-operator-api"}
    services = [d for d in docs if d["kind"] == "Service"]
    for monitor in monitors.values():  # each ServiceMonitor selects a Service that has its port
        selector = monitor["spec"]["selector"]["matchLabels"]
        port = monitor["spec"]["endpoints"][0]["port"]
        assert any(selector.items() <= s["metadata"]["labels"].items() and port in [p["name"] for p in s["spec"]["ports"]]
                   for s in services), monitor["metadata"]["name"]
    [dashboard] = [d for d in docs if d["kind"] == "ConfigMap"]
    panels = json.loads(dashboard["data"]["yolo-training.json"])["panels"]
    assert len(panels) >= 10


@pytest.mark.parametrize(("mode", "extra", "secret"), [
    ("kubernetes", [], "yolo-yolo-training-operator-metrics-reader"),
    ("token", ["--set", "api.auth.tokenSecret.name=api-token"], "api-token"),
    ("none", [], None),
    ("kubernetes", ["--set", "api.metricsPublic=true"], None),
])
def test_prometheus_presents_a_token_the_api_accepts_in_every_auth_mode(mode: str, extra: list[str],
                                                                        secret: str | None) -> None:
    """The bug: the API ServiceMonitor sent Prometheus's own token (refused in token mode) through the
    deprecated bearerTokenFile. Now: the static token's Secret, or a metrics reader allowed `get /metrics`."""
    docs = render(None, "--set", "monitoring.serviceMonitor.enabled=true", "--set", f"api.auth.mode={mode}", *extra)
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor" and d["metadata"]["name"].endswith("-api")]
    [endpoint] = monitor["spec"]["endpoints"]
    assert "bearerTokenFile" not in endpoint
    if secret is None:
        assert "authorization" not in endpoint
        return
    assert endpoint["authorization"]["type"] == "Bearer" and endpoint["authorization"]["credentials"]["name"] == secret
    if mode == "kubernetes":
        [token] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == secret]
        assert token["type"] == "kubernetes.io/service-account-token"
        reader = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        [binding] = [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == secret]
        assert binding["subjects"][0]["name"] == reader
        [role] = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == binding["roleRef"]["name"]]
        assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def test_the_dashboard_only_names_metrics_that_exist() -> None:
    from prometheus_client import CollectorRegistry

    from fakes import MemoryBackend
    from yolo_api.metrics import RequestMetrics, TrainingCollector
    from yolo_operator.metrics import REGISTRY

    registry = CollectorRegistry()
    backend = MemoryBackend()
    backend.put({"phase": "Running", "stage": "training", "currentEpoch": 1, "totalEpochs": 2, "progress": 50.0,
                 "startTime": "2026-01-01T00:00:00Z", "metrics": {
                     "epoch": 1, "mAP50": 0.1, "mAP50-95": 0.05, "precision": 0.2, "recall": 0.3,
                     "train_box_loss": 1.0, "train_cls_loss": 1.0, "train_dfl_loss": 1.0}})
    backend.reconnects = 0  # type: ignore[attr-defined]
    registry.register(TrainingCollector(backend))
    RequestMetrics(app=None, registry=registry)  # type: ignore[arg-type]
    exported = {sample for reg in (registry, REGISTRY) for family in reg.collect()
                for sample in [family.name, *(s.name for s in family.samples)]}
    exported |= {f"{name}_total" for name in exported} | {f"{name}_bucket" for name in exported}
    dashboard = json.loads((CHART / "dashboards/yolo-training.json").read_text())
    named = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"yolo_[a-z0-9_]+", target["expr"])}
    assert named and named <= exported, named - exported


def test_pull_secrets_reach_the_trainer_pods_through_the_operator() -> None:
    from yolo_operator.settings import OperatorSettings

    docs = render(None, "--set", "imagePullSecrets[0].name=regcred")
    [operator] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator")]
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert OperatorSettings.model_validate({"image_pull_secrets": json.loads(env["YOLO_OPERATOR_IMAGE_PULL_SECRETS"])
                                            }).image_pull_secrets == ["regcred"]


def test_default_storage_reaches_the_api_as_its_setting() -> None:
    from yolo_crd.spec import StorageSpec

    docs = render(EXAMPLES / "values-gpu.yaml")
    [api] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")]
    env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    storage = StorageSpec.model_validate_json(env["YOLO_API_DEFAULT_STORAGE"])
    assert storage.output_volume == "data" and storage.volumes[0].claim_name == "datasets"
