"""The trainer image on its own: no network at all, a read-only root, an arbitrary non-root uid.

It must train from what it carries and what is mounted: torch, ultralytics, the architecture YAML, fonts.
Anything it tried to download would fail here (``--network none``) and show in the logs.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from pods import Engine, run_pod
from testbed import IMAGES, readable

pytestmark = pytest.mark.image
UID = 65532  # in no passwd file: a kubelet may run the image as any uid


def offline_pod(command: list[str], args: list[str], env: dict[str, str]) -> dict[str, Any]:
    mounts = [{"name": "data", "mountPath": "/data", "readOnly": True}, {"name": "out", "mountPath": "/outputs"}]
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "out", "persistentVolumeClaim": {"claimName": "out"}}],
        "containers": [{"name": "trainer", "image": IMAGES["trainer"], "command": command, "args": args,
                        "env": [{"name": k, "value": v} for k, v in env.items()], "volumeMounts": mounts}],
    }


@pytest.fixture
def claims(tmp_path: Path) -> dict[str, Path]:
    from yolo_trainer.synthetic import make_dataset

    data = readable(tmp_path / "data")
    yaml_file = make_dataset(data / "shapes", classes=2, train=32, val=8, imgsz=64)
    yaml_file.write_text(yaml_file.read_text().replace(f"path: {yaml_file.parent.absolute()}", "path: /data/shapes"))
    return {"data": data, "out": readable(tmp_path / "out")}


def test_trains_two_epochs_offline_read_only_as_any_uid(engine: Engine, claims: dict[str, Path]) -> None:
    spec = {"model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 2, "imgsz": 64, "gpus": 0,
            "hyperparameters": {"workers": 0}, "export": ["onnx", "torchscript"]}
    env = {"YOLO_TRAINER_SPEC": json.dumps(spec), "YOLO_TRAINER_OUTPUT_DIR": "/outputs",
           "YOLO_TRAINER_TASK_ID": "offline-run"}
    pod = offline_pod(["python", "-m", "yolo_trainer"], [], env)
    result = run_pod(engine, pod, claims=claims, cluster=None, network="none", timeout=480)
    assert result.returncode == 0, result.stdout[-6000:]
    run = claims["out"] / "offline-run"
    assert (run / "weights" / "best.pt").stat().st_size > 1_000_000
    assert (run / "weights" / "best.pt").stat().st_uid == UID
    final = [line for line in result.stdout.splitlines() if '"stage": "completed"' in line]
    assert final and '"finalMetrics"' in final[-1], result.stdout[-3000:]
    assert '"exports"' in final[-1] and '"kind": "plot"' in final[-1], final[-1][-3000:]
    # the exports' packages are in the image, the plots draw offline
    assert (run / "weights" / "best.onnx").stat().st_size > 100_000 and (run / "weights" / "best.torchscript").is_file()
    for plot in ("confusion_matrix.png", "BoxPR_curve.png", "results.png", "val_batch0_pred.jpg"):
        assert (run / plot).stat().st_size > 1000, plot
    for trace in ("Downloading", "Error writing", "not writable, using", "Matplotlib created a temporary",
                  "AutoUpdate"):
        assert trace not in result.stdout, trace


def test_fonts_resolve_offline_and_sync_is_off(engine: Engine, claims: dict[str, Path]) -> None:
    probe = ("from yolo_trainer.runner import configure_ultralytics; from yolo_trainer.settings import TrainerSettings;"
             "from pathlib import Path; configure_ultralytics(TrainerSettings(), Path('/outputs'));"
             "from ultralytics.utils import SETTINGS; from ultralytics.utils.checks import check_font;"
             "print(check_font('Arial.ttf'), check_font('Arial.Unicode.ttf'), SETTINGS['sync'])")
    pod = offline_pod(["python", "-c", probe], [], {})
    result = run_pod(engine, pod, claims=claims, cluster=None, network="none", timeout=120)
    assert result.returncode == 0, result.stdout
    arial, unicode, sync = result.stdout.split()[-3:]
    assert arial.startswith("/usr/local/share/fonts/") and unicode.startswith("/usr/local/share/fonts/")
    assert sync == "False"


def test_torch_is_the_tested_release_with_cuda(engine: Engine, claims: dict[str, Path]) -> None:
    import torch
    import torchvision

    probe = "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.version.cuda)"
    result = run_pod(engine, offline_pod(["python", "-c", probe], [], {}), claims=claims, cluster=None,
                     network="none", timeout=120)
    assert result.returncode == 0, result.stdout
    version, vision, cuda = result.stdout.split()[-3:]
    # the releases `make test` ran with (pinned in pyproject.toml's trainer extra)
    assert version.split("+")[0] == torch.__version__.split("+")[0]
    assert vision.split("+")[0] == torchvision.__version__.split("+")[0]
    assert cuda.startswith("13."), "the image must carry a CUDA build of torch for GPU nodes"


@pytest.mark.parametrize("image", ["trainer", "api"])
def test_the_images_carry_the_object_storage_client(image: str, engine: Engine, claims: dict[str, Path]) -> None:
    module = {"trainer": "yolo_trainer.storage", "api": "yolo_api.storage"}[image]
    probe = (f"import os, boto3; from {module} import make_client; os.environ['AWS_ENDPOINT_URL'] = 'http://s3.local'; "
             "print(boto3.__version__, make_client().meta.endpoint_url)")
    pod = offline_pod(["python", "-c", probe], [], {})
    pod["containers"][0]["image"] = IMAGES[image]
    result = run_pod(engine, pod, claims=claims, cluster=None, network="none", timeout=120)
    assert result.returncode == 0, result.stdout
    assert result.stdout.split()[-1] == "http://s3.local"
