"""The CRD manifest in the chart and the pydantic models are one contract: names, fields, types, bounds.

The API server silently prunes status fields its schema does not declare, so a field written by the
trainer or the operator but missing here would vanish without an error: these tests make that impossible.
"""

from typing import Any

import pytest
from pydantic import ValidationError

from crd import load_crd, openapi_schema, pruned_paths
from schema import SchemaError, StructuralSchema
from yolo_crd import names
from yolo_crd.hyperparameters import ALLOWED_HYPERPARAMETERS
from yolo_crd.ownership import OPERATOR_FIELDS, TRAINER_FIELDS
from yolo_crd.spec import YoloTrainingSpec
from yolo_crd.status import FinalMetrics, StopReason, TrainingStatus
from yolo_trainer.progress import ProgressTracker, epoch_metrics

ROW = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.4, "metrics/mAP50(B)": 0.3,
       "metrics/mAP50-95(B)": 0.2, "train/box_loss": 1.0, "train/cls_loss": 2.0, "train/dfl_loss": 3.0,
       "val/box_loss": 1.1, "val/cls_loss": 2.1, "val/dfl_loss": 3.1}


def test_names_match_the_constants() -> None:
    crd = load_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == names.CRD_NAME
    assert spec["group"] == names.GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == names.KIND and spec["names"]["plural"] == names.PLURAL
    assert spec["names"]["singular"] == names.SINGULAR and tuple(spec["names"]["shortNames"]) == names.SHORT_NAMES
    version = spec["versions"][0]
    assert version["name"] == names.VERSION and version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in load_crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == ["Status", "Stage", "Epoch", "Progress", "mAP50", "mAP50-95", "Reason", "Task-ID", "Age"]
    assert columns["Task-ID"]["jsonPath"] == ".metadata.uid" and columns["Task-ID"]["priority"] == 1


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(defs[schema["$ref"].split("/")[-1]], defs)
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return _resolve({**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}, defs)
    return schema


def _compare(model: dict[str, Any], crd: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    model = _resolve(model, defs)
    if "anyOf" in model:  # a union (e.g. hyperparameter values, quantities): the CRD must stay open
        return
    expected = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean",
                "object": "object", "array": "array"}[model["type"]]
    assert crd.get("type") == expected or ("anyOf" in crd and expected != "object"), f"{path}: type"
    for bound, crd_key in (("minimum", "minimum"), ("maximum", "maximum"), ("minLength", "minLength"),
                           ("maxLength", "maxLength"), ("maxItems", "maxItems"), ("pattern", "pattern")):
        if bound in model:
            assert crd.get(crd_key) == model[bound], f"{path}: {bound} {crd.get(crd_key)} != {model[bound]}"
    if "enum" in model:
        assert set(crd["enum"]) == set(model["enum"]), f"{path}: enum"
    if "properties" in model and "properties" not in crd and isinstance(crd.get("additionalProperties"), dict):
        # a map in the CRD whose keys a CEL rule lists (successCriteria): every model field is one of its keys
        rule = " ".join(r["rule"] for r in crd.get("x-kubernetes-validations", []))
        assert all(f"'{key}'" in rule for key in model["properties"]), f"{path}: keys differ from the rule"
        for key, sub in model["properties"].items():
            _compare(sub, crd["additionalProperties"], defs, f"{path}.{key}")
    elif "properties" in model:
        assert set(crd.get("properties", {})) == set(model["properties"]), f"{path}: fields differ"
        for key, sub in model["properties"].items():
            _compare(sub, crd["properties"][key], defs, f"{path}.{key}")
    if model.get("type") == "array" and "items" in model and "items" in crd:
        _compare(model["items"], crd["items"], defs, f"{path}[]")


@pytest.mark.parametrize(("section", "model"), [("spec", YoloTrainingSpec), ("status", TrainingStatus)])
def test_models_and_schema_agree(section: str, model: type) -> None:
    json_schema = model.model_json_schema(by_alias=True)
    _compare(json_schema, openapi_schema()["properties"][section], json_schema.get("$defs", {}), section)


def test_required_spec_fields() -> None:
    assert openapi_schema()["properties"]["spec"]["required"] == ["model", "data"]


def test_everything_the_trainer_writes_is_declared() -> None:
    status_schema = openapi_schema()["properties"]["status"]
    tracker = ProgressTracker(3)
    skipped = {"images": 2, "labels": 1, "reasons": ["/d/images/a.jpg: cannot identify image file"]}
    patches = [tracker.initializing(), tracker.dataset_checked(skipped), tracker.started(0, 3)]
    for epoch in (1, 2, 3):
        patch = tracker.epoch_done(epoch_metrics(epoch, ROW), 3, last=epoch == 3)
        assert patch is not None
        patches.append(patch)
    final = FinalMetrics.from_validation(0.3, 0.2, 0.5, 0.4)
    patches += [tracker.completed(final, "/out/w/best.pt", "/out", StopReason.EPOCHS), tracker.failed("TrainingError", "x")]
    artifact = {"name": "best.pt", "uri": "s3://models/runs/t/best.pt", "size": 6_000_000, "sha256": "c" * 64}
    patches += [tracker.downloading({"uri": "s3://b/d/data.yaml", "doneBytes": 1, "totalBytes": 2, "files": 0,
                                     "totalFiles": 3, "cached": False}), tracker.downloaded(),
                tracker.lineage("s3://b/w.pt", "d" * 64, "uid-1", "base"), tracker.artifacts([artifact]),
                tracker.completed(final, "/out/w/best.pt", "/out", StopReason.EPOCHS, [artifact] * 16)]
    resumed = ProgressTracker(3).started(2, 3, [epoch_metrics(1, ROW), epoch_metrics(2, ROW)])
    for patch in [*patches, resumed]:
        assert pruned_paths(patch, status_schema) == []
        assert set(patch) <= TRAINER_FIELDS
        TrainingStatus.model_validate({k: v for k, v in patch.items() if v is not None})


def test_every_status_field_has_exactly_one_owner() -> None:
    declared = set(openapi_schema()["properties"]["status"]["properties"])
    assert declared == TRAINER_FIELDS | OPERATOR_FIELDS
    assert set() == TRAINER_FIELDS & OPERATOR_FIELDS


def test_a_finished_phase_is_final_on_the_server() -> None:
    rule = openapi_schema()["properties"]["status"]["x-kubernetes-validations"][0]
    assert "oldSelf.phase" in rule["rule"] and "Succeeded" in rule["rule"] and "Failed" in rule["rule"]


def test_an_accepted_success_never_becomes_a_failure_on_the_server() -> None:
    schema = StructuralSchema("YoloTraining", openapi_schema())
    spec = {"model": "m.yaml", "data": "d.yaml"}
    final = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
    reported = schema.admit({"spec": spec, "status": {"phase": "Running", "stage": "completed", "finalMetrics": final}},
                            None)
    with pytest.raises(SchemaError, match="already reported its success"):
        schema.admit({**reported, "status": {**reported["status"], "phase": "Failed", "reason": "Cancelled"}}, reported)
    schema.admit({**reported, "status": {**reported["status"], "phase": "Succeeded"}}, reported)
    cancelled = schema.admit({"spec": spec, "status": {"phase": "Failed", "reason": "Cancelled"}}, None)
    late = {**cancelled, "status": {**cancelled["status"], "stage": "completed", "finalMetrics": final}}
    schema.admit({**late, "status": {**late["status"], "message": "cancelled"}}, schema.admit(late, cancelled))


def test_a_missed_quality_gate_is_a_failure_on_the_server() -> None:
    schema = StructuralSchema("YoloTraining", openapi_schema())
    spec = {"model": "m.yaml", "data": "d.yaml", "successCriteria": {"mAP50": 0.9}}
    final = {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5, "f1_score": 0.5455}
    gate = {"passed": False, "message": "quality gate not met: mAP50 0.5 < 0.9"}
    reported = schema.admit({"spec": spec, "status": {"phase": "Running", "stage": "completed", "finalMetrics": final,
                                                      "qualityGate": gate}}, None)
    with pytest.raises(SchemaError, match="cannot become Succeeded"):
        schema.admit({**reported, "status": {**reported["status"], "phase": "Succeeded"}}, reported)
    schema.admit({**reported, "status": {**reported["status"], "phase": "Failed", "reason": "QualityGateNotMet"}},
                 reported)


def test_the_allowed_hyperparameters_are_declared_in_the_crd() -> None:
    """Declared, so that CEL's immutability rule compares every key (it skips keys of schemaless objects
    that only one side has); ``cache`` (a bool or a choice) has no structural type and stays undeclared."""
    declared = openapi_schema()["properties"]["spec"]["properties"]["hyperparameters"]["properties"]
    expected = {key for key, rule in ALLOWED_HYPERPARAMETERS.items() if rule.kind != "bool_or_choice"}
    assert set(declared) == expected
    kinds = {"float": "number", "int": "integer", "bool": "boolean", "choice": "string"}
    for key in expected:
        rule = ALLOWED_HYPERPARAMETERS[key]
        assert declared[key]["type"] == kinds[rule.kind], key
        if rule.low is not None:
            assert declared[key]["minimum"] == rule.low, key
        if rule.high is not None:
            assert declared[key]["maximum"] == rule.high, key
        if rule.choices:
            assert declared[key]["enum"] == list(rule.choices), key


def test_every_spec_field_but_suspend_is_immutable_on_the_server() -> None:
    """The Job made from a spec cannot follow an edit, and the API speaks of the spec it was made from: one
    CEL rule per field refuses the change and names the field (checked on kube-apiserver in tests/e2e)."""
    spec = openapi_schema()["properties"]["spec"]
    guarded = {rule["message"].split()[0].removeprefix("spec.") for rule in spec["x-kubernetes-validations"]}
    assert guarded == set(spec["properties"]) - {"suspend"}
    for rule in spec["x-kubernetes-validations"]:
        field = rule["message"].split()[0].removeprefix("spec.")
        assert rule["rule"] == (f"has(self.{field}) == has(oldSelf.{field}) && "
                                f"(!has(self.{field}) || self.{field} == oldSelf.{field})")


def test_the_emulator_refuses_a_spec_change_as_the_server_does() -> None:
    schema = StructuralSchema("YoloTraining", openapi_schema())
    old = schema.admit({"spec": {"model": "m.yaml", "data": "d.yaml", "epochs": 3}}, None)
    schema.admit({"spec": {**old["spec"], "suspend": True}}, old)
    with pytest.raises(SchemaError, match=r"spec\.epochs cannot change"):
        schema.admit({"spec": {**old["spec"], "epochs": 4}}, old)
    with pytest.raises(SchemaError, match=r"spec\.image cannot change"):
        schema.admit({"spec": {**old["spec"], "image": "x/y:1"}}, old)


@pytest.mark.parametrize("field", [
    {"resources": {"limits": {"memory": "8Gi"}, "requests": {"cpu": "500m", "nvidia.com/mig-1g.10gb": 1}}},
    {"resources": {"limits": {"memory": "8 GB"}}}, {"resources": {"requests": {"cpu": -1}}},
    {"resources": {"requests": {"cpu": "-500m"}}},
    {"storage": {"volumes": [{"name": "d", "claimName": "c", "mountPath": "/d", "subPath": "team/v2"}]}},
    {"storage": {"volumes": [{"name": "d", "claimName": "c", "mountPath": "/d", "subPath": "/etc"}]}},
    {"storage": {"volumes": [{"name": "d", "claimName": "c", "mountPath": "/d", "subPath": "a/../../b"}]}},
], ids=["quantities", "spaced-unit", "negative", "negative-string", "sub-path", "absolute", "dot-dot"])
def test_the_server_and_the_contract_refuse_the_same_specs(field: dict[str, Any]) -> None:
    """A spec the CRD admits but the contract refuses fails as InvalidSpec; one the contract admits but the
    API server refuses for the Job (422) would be retried for ever: the two must agree."""
    body = {"apiVersion": f"{names.GROUP}/{names.VERSION}", "kind": names.KIND, "metadata": {"name": "x"},
            "spec": {"model": "m.yaml", "data": "d.yaml", **field}}
    try:
        StructuralSchema(names.KIND, openapi_schema()).admit(body, None)
        server = True
    except SchemaError:
        server = False
    try:
        YoloTrainingSpec.model_validate(body["spec"])
        contract = True
    except ValidationError:
        contract = False
    assert server == contract
