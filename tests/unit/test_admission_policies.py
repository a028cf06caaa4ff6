"""Admission: the allow-list rule (yolo_crd.admission) and the chart's policies derived from the ownership table.

The ValidatingAdmissionPolicies themselves run in tests/e2e/test_policies.py on a real API server; here the
chart is rendered with helm and its field lists are held equal to yolo_crd.ownership, its allow-lists to the
values, and the Python rule (operator, POST /train) is table-tested.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from crd import ROOT, openapi_schema
from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings
from yolo_crd.admission import image_allowed, priority_class_allowed, refusals, secret_allowed
from yolo_crd.ownership import OPERATOR_FIELDS, TRAINER_FIELDS
from yolo_crd.spec import YoloTrainingSpec
from yolo_operator.policy import refusal
from yolo_operator.settings import OperatorSettings

CHART = ROOT / "deploy/helm/yolo-training-operator"
REPO = "reg.example/yolo/trainer"
#: Kubernetes' CEL keywords: a field with such a name is reached as __name__ (the chart's yolo.celField).
CEL_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
                "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}


@pytest.mark.parametrize(("image", "prefixes", "allowed"), [
    (REPO, [REPO], True),
    (f"{REPO}:1.0", [REPO], True),
    (f"{REPO}@sha256:{'a' * 64}", [REPO], True),
    (f"{REPO}-evil:1.0", [REPO], False),
    (f"{REPO}/sub:1", [REPO], False),
    ("reg.example:5000/x:1", ["reg.example"], False),  # a port is not a tag
    (f"{REPO}:x/y", [REPO], False),
    ("reg.example/yolo/anything/deeper:1", ["reg.example/yolo/"], True),
    ("reg.example/yolo-evil/x:1", ["reg.example/yolo/"], False),
    ("reg.example/yolo:1", ["reg.example/yolo/"], False),
    (f"{REPO}:1", [], False),
    (f"{REPO}:1", [""], False),
    ("other/x:1", ["a/", "other/x"], True),
])
def test_image_prefixes(image: str, prefixes: list[str], allowed: bool) -> None:
    assert image_allowed(image, prefixes) is allowed


@pytest.mark.parametrize(("name", "allowed_names", "allowed"), [
    ("s3", ["s3"], True), ("s3-x", ["s3"], False), ("team-a", ["team-*"], True), ("team", ["team-*"], False),
    ("anything", ["*"], True), ("x", [], False),
])
def test_secret_names_and_prefixes(name: str, allowed_names: list[str], allowed: bool) -> None:
    assert secret_allowed(name, allowed_names) is allowed


def test_an_empty_priority_class_list_allows_any() -> None:
    assert priority_class_allowed("system-node-critical", [])
    assert not priority_class_allowed("system-node-critical", ["high", "batch-*"])
    assert priority_class_allowed("batch-low", ["high", "batch-*"])


def spec(**fields: Any) -> YoloTrainingSpec:
    return YoloTrainingSpec.model_validate({"model": "m.yaml", "data": "d.yaml", **fields})


def test_refusals_name_every_field_and_what_is_allowed() -> None:
    bad = spec(image=f"{REPO}-evil:1", objectStorage={"secretRef": {"name": "admin"}}, priorityClassName="top")
    found = refusals(bad, images=[REPO], secrets=["team-*"], priority_classes=["high"])
    assert [item.path for item in found] == [("image",), ("objectStorage", "secretRef", "name"),
                                            ("priorityClassName",)]
    assert f"spec.image {REPO}-evil:1 is not allowed: allowed images are {REPO}" in found[0].message
    assert "allowed Secrets are team-*" in found[1].message and "allowed PriorityClasses are high" in found[2].message
    assert "allowed Secrets are none" in refusals(bad, secrets=[])[0].message
    assert refusals(bad) == []  # no lists: nothing enforced
    assert refusals(spec(), images=[], secrets=[], priority_classes=["high"]) == []  # nothing named: the defaults


def test_the_operator_refuses_with_one_message() -> None:
    settings = OperatorSettings(allowed_images=[REPO], allowed_secrets=[])
    assert refusal(spec(image=f"{REPO}:2"), settings) is None
    message = refusal(spec(image="evil/x:1", objectStorage={"secretRef": {"name": "s"}}), settings)
    assert message is not None and "spec.image evil/x:1" in message and "; spec.objectStorage.secretRef s" in message
    assert refusal(spec(image="evil/x:1"), OperatorSettings()) is None


def test_post_train_answers_422_naming_the_field() -> None:
    backend = MemoryBackend()
    settings = ApiSettings(backend="local", auth_token=TOKEN, allowed_secrets=["team-*"])
    with TestClient(create_app(settings, backend=backend), headers=AUTH) as http:
        refused = http.post("/train", json={"model": "m.yaml", "data": "d.yaml", "gpus": 0,
                                            "object_storage": {"secretRef": {"name": "admin"}}})
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["code"] == 1 and backend.records == {}
        [error] = body["data"]["errors"]
        assert error["loc"] == ["body", "object_storage", "secretRef", "name"]
        assert "spec.objectStorage.secretRef admin is not allowed: allowed Secrets are team-*" in error["msg"]
        allowed = http.post("/train", json={"model": "m.yaml", "data": "d.yaml", "gpus": 0,
                                            "object_storage": {"secretRef": {"name": "team-a"}}})
        assert allowed.status_code == 200, allowed.text


# -- the chart ---------------------------------------------------------------------------------------------------


def render(values: Path | None = None, *extra: str) -> list[dict[str, Any]]:
    helm = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if helm is None:
        pytest.fail("helm is not installed: run `make install` (it puts helm into .venv/bin)")
    args = [helm, "template", "yolo", str(CHART), "--namespace", "yolo-system", *extra]
    result = subprocess.run(args + (["-f", str(values)] if values else []), capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def docs_of(kind: str, docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def policy(docs: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    [found] = [doc for name, doc in docs_of("ValidatingAdmissionPolicy", docs).items() if name.endswith(suffix)]
    return found


def variable(policy_doc: dict[str, Any], name: str) -> str:
    return str(next(v["expression"] for v in policy_doc["spec"]["variables"] if v["name"] == name))


def cel_field(name: str) -> str:
    """Kubernetes' escaping of a property name in CEL, as the chart's yolo.celField does it."""
    if name in CEL_RESERVED:
        return f"__{name}__"
    return name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")


def listed_fields(expression: str) -> set[str]:
    """The field names a ``...FieldsChanged`` expression reports, each checked to be compared where it reads it."""
    names = set(re.findall(r'\? \["([^"]+)"\] : \[\]', expression))
    for name in names:
        field = cel_field(name)
        assert f"object.status.{field} == oldObject.status.{field}" in expression, name
        assert f"has(oldObject.status.{field})" in expression and f"has(object.status.{field})" in expression, name
    return names


def test_status_policy_fields_are_the_ownership_table() -> None:
    writers = policy(render(), "-status-writers")
    assert listed_fields(variable(writers, "operatorFieldsChanged")) == OPERATOR_FIELDS
    assert listed_fields(variable(writers, "trainerFieldsChanged")) == TRAINER_FIELDS
    # two writers, no third: every status property the CRD declares (the API server prunes others) has an owner
    assert set(openapi_schema()["properties"]["status"]["properties"]) == TRAINER_FIELDS | OPERATOR_FIELDS
    trainer_rule, operator_rule = writers["spec"]["validations"]
    assert "variables.isTrainer" in trainer_rule["expression"] and "operatorFieldsChanged" in trainer_rule["expression"]
    assert "variables.isOperator" in operator_rule["expression"] and "trainerFieldsChanged" in operator_rule["expression"]
    assert "the trainer (" in trainer_rule["messageExpression"] and "the operator (" in operator_rule["messageExpression"]
    assert writers["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["yolotrainings/status"]


@pytest.mark.parametrize(("extra", "account"), [
    ((), "system:serviceaccount:yolo-system:yolo-yolo-training-operator-operator"),
    (("--set", "operator.serviceAccount.name=op"), "system:serviceaccount:yolo-system:op"),
    (("--set", "operator.serviceAccount.create=false"), "system:serviceaccount:yolo-system:default"),
])
def test_the_operator_is_named_by_its_service_account(extra: tuple[str, ...], account: str) -> None:
    docs = render(None, *extra)
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("operator"))
    name = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert account.endswith(f":{name}")
    assert variable(policy(docs, "-status-writers"), "isOperator") == f"request.userInfo.username == '{account}'"


def test_policies_follow_the_watched_namespaces_and_can_be_turned_off() -> None:
    everywhere = docs_of("ValidatingAdmissionPolicyBinding", render())
    assert len(everywhere) == 3 and all("matchResources" not in doc["spec"] for doc in everywhere.values())
    scoped = docs_of("ValidatingAdmissionPolicyBinding", render(None, "--set", "operator.watchNamespaces={a,b}"))
    for doc in scoped.values():
        [selector] = doc["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert selector == {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
    off = render(None, "--set", "admissionPolicies.enabled=false")
    assert not [doc for doc in off if doc["kind"].startswith("ValidatingAdmissionPolicy")]


def env_of(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith(component))
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(("extra", "images", "secrets", "classes"), [
    ((), [REPO], [], None),
    (("--set", "objectStorage.secretName=s3", "--set", "objectStorage.allowedSecrets={team-*}",
      "--set", "trainer.allowedImages={reg.example/yolo/,other/x}", "--set", "trainer.allowedPriorityClasses={high}"),
     ["reg.example/yolo/", "other/x"], ["team-*", "s3"], ["high"]),
])
def test_allow_lists_are_the_same_for_the_policy_the_operator_and_the_api(
        extra: tuple[str, ...], images: list[str], secrets: list[str], classes: list[str] | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(None, "--set", f"trainer.image.repository={REPO}", *extra)
    for name in ("-training-references", "-sweep-references"):  # a sweep's template is checked the same way
        references = policy(docs, name)
        assert variable(references, "allowedImages") == str(images).replace("'", '"').replace(", ", ",")
        assert variable(references, "allowedSecrets") == str(secrets).replace("'", '"').replace(", ", ",")
    operator_env, api_env = env_of(docs, "operator"), env_of(docs, "api")
    for key, value in operator_env.items():
        monkeypatch.setenv(key, value)
    for key, value in api_env.items():
        monkeypatch.setenv(key, value)
    operator, api = OperatorSettings(), ApiSettings()
    assert operator.allowed_images == api.allowed_images == images
    assert operator.allowed_secrets == api.allowed_secrets == secrets
    assert operator.allowed_priority_classes == api.allowed_priority_classes == classes


def test_retention_values_reach_the_operator_and_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "YOLO_OPERATOR_TRAINING_TTL_SECONDS" not in env_of(render(), "operator")
    docs = render(None, "--set", "trainings.ttlSecondsAfterFinished=3600", "--set", "api.reapedRetentionSeconds=60")
    for key, value in {**env_of(docs, "operator"), **env_of(docs, "api")}.items():
        monkeypatch.setenv(key, value)
    assert OperatorSettings().training_ttl_seconds == 3600
    assert ApiSettings().reaped_retention_seconds == 60
    assert ApiSettings.model_fields["reaped_retention_seconds"].default == 86400
