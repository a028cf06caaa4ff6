"""The spec model: defaults, bounds, the hyperparameter allow-list and the device mapping."""

import pytest
from pydantic import ValidationError

from yolo_crd.hyperparameters import hyperparameter_error
from yolo_crd.spec import YoloTrainingSpec


def spec(**fields: object) -> YoloTrainingSpec:
    return YoloTrainingSpec.model_validate({"model": "yolov8n.yaml", "data": "/data/d.yaml", **fields})


def test_defaults_follow_the_contract() -> None:
    s = spec()
    assert (s.epochs, s.imgsz, s.batch, s.gpus, s.suspend) == (100, 640, 16, 1, False)
    assert s.hyperparameters == {}


def test_camel_case_on_the_wire_snake_case_in_python() -> None:
    s = YoloTrainingSpec.model_validate({"model": "m.pt", "data": "d.yaml", "activeDeadlineSeconds": 60,
                                         "nodeSelector": {"gpu": "a100"}, "queueName": "team-a"})
    assert s.active_deadline_seconds == 60 and s.node_selector == {"gpu": "a100"}
    wire = s.wire()
    assert wire["activeDeadlineSeconds"] == 60 and wire["queueName"] == "team-a"
    assert "active_deadline_seconds" not in wire


@pytest.mark.parametrize(("field", "value"), [
    ("epochs", 0), ("epochs", 10001), ("imgsz", 31), ("imgsz", 8193), ("batch", 0), ("batch", -2),
    ("batch", 4097), ("gpus", -1), ("gpus", 17), ("model", "weights.bin"), ("data", "data.json"),
    ("model", ""), ("unknownField", 1),
])
def test_out_of_range_and_unknown_fields_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        spec(**{field: value})


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (1, "0"), (2, "0,1"), (4, "0,1,2,3")])
def test_device_follows_gpus(gpus: int, device: str) -> None:
    assert spec(gpus=gpus).train_device() == device


def test_cpu_device_with_gpus_is_an_invalid_combination() -> None:
    with pytest.raises(ValidationError, match="set gpus to 0"):
        spec(gpus=1, device="cpu")
    assert spec(gpus=0, device="cpu").train_device() == "cpu"
    assert spec(gpus=2, device="2,3").train_device() == "2,3"


def test_allowed_hyperparameters_pass() -> None:
    hp = {"lr0": 0.02, "optimizer": "SGD", "patience": 5, "cos_lr": True, "cache": "ram", "mosaic": 0.5,
          "workers": 2, "seed": 1, "weight_decay": 0.0005, "lrf": 0.01, "momentum": 0.9}
    assert spec(hyperparameters=hp).hyperparameters == hp


@pytest.mark.parametrize("key", ["project", "name", "save_dir", "exist_ok"])
def test_output_location_cannot_be_chosen(key: str) -> None:
    with pytest.raises(ValidationError, match="trainer chooses where outputs are written"):
        spec(hyperparameters={key: "x"})


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("epochs", 3, "set the spec field 'epochs'"),
    ("resume", True, "resumes automatically"),
    ("lr", 0.1, "unknown hyperparameter 'lr'"),
    ("lr0", -1, "between"),
    ("lr0", "fast", "must be a number"),
    ("patience", 2.5, "must be an integer"),
    ("optimizer", "Adagrad", "must be one of"),
    ("cos_lr", "yes", "true or false"),
    ("mosaic", 1.5, "between"),
])
def test_hyperparameter_errors_say_what_to_do(key: str, value: object, fragment: str) -> None:
    error = hyperparameter_error(key, value)
    assert error is not None and fragment in error
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(")):
        spec(hyperparameters={key: value})


def test_storage_output_volume_must_be_declared_and_writable() -> None:
    volume = {"name": "data", "claimName": "pvc-data", "mountPath": "/data"}
    assert spec(storage={"volumes": [volume], "outputVolume": "data"}).storage is not None
    with pytest.raises(ValidationError, match=r"not one of storage\.volumes"):
        spec(storage={"volumes": [volume], "outputVolume": "out"})
    with pytest.raises(ValidationError, match="readOnly"):
        spec(storage={"volumes": [{**volume, "readOnly": True}], "outputVolume": "data"})


QUANTITIES_OK = [1, 0, "500m", "8Gi", "1.5", "2e3", ".5", "+1"]
QUANTITIES_BAD = [-1, "8 GB", "lots", "1.5.2", "-500m", "8gi", True]


@pytest.mark.parametrize("value", QUANTITIES_OK)
def test_resource_quantities_the_api_server_parses_pass(value: object) -> None:
    assert spec(resources={"limits": {"memory": value}, "requests": {"cpu": value}}).resources is not None


@pytest.mark.parametrize("value", QUANTITIES_BAD)
def test_malformed_or_negative_quantities_are_refused_before_a_job_is_made(value: object) -> None:
    """The bug: '8 GB' passed the contract, the Job create got 422, kopf retried it for ever."""
    with pytest.raises(ValidationError, match="memory"):
        spec(resources={"limits": {"memory": value}})


def test_a_fraction_of_a_cpu_from_json_becomes_a_quantity() -> None:
    assert spec(resources={"requests": {"cpu": 0.5}}).wire()["resources"]["requests"]["cpu"] == "0.5"


@pytest.mark.parametrize("sub_path", ["/etc", "..", "../other", "a/../../b", "a/.."])
def test_a_sub_path_stays_inside_its_volume(sub_path: str) -> None:
    volume = {"name": "data", "claimName": "pvc-data", "mountPath": "/data", "subPath": sub_path}
    with pytest.raises(ValidationError, match="subPath"):
        spec(storage={"volumes": [volume]})
    assert spec(storage={"volumes": [{**volume, "subPath": "team-a/datasets..v2"}]}).storage is not None


def test_a_validation_error_reads_as_one_line_the_same_in_every_component() -> None:
    from pydantic import ValidationError

    from yolo_crd.wire import one_line
    from yolo_operator.handlers import parse_spec

    try:
        YoloTrainingSpec.model_validate({"model": "m.exe", "data": "d.yaml", "epochs": 0})
    except ValidationError as exc:
        line = one_line(exc)
    assert line.startswith("model: model must be weights (.pt) or an architecture (.yaml)")
    assert line.endswith("; epochs: Input should be greater than or equal to 1") and "\n" not in line
    with pytest.raises(ValueError, match=r"^invalid spec: epochs: Input should be greater than or equal to 1"):
        parse_spec({"model": "m.yaml", "data": "d.yaml", "epochs": 0})
