"""Packaging rules: light components import without torch, nothing shadows the stdlib ``operator``, and the
trainer image installs the torch release the tests run with."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK_HEAVY = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'torchvision', 'ultralytics', 'cv2'}:
            raise ImportError(f'{name} is not installed here')
sys.meta_path.insert(0, Block())
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          cwd=ROOT)


def test_operator_api_and_contract_import_without_torch() -> None:
    modules = ["yolo_crd", "yolo_crd.envelope", "yolo_io.local_store", "yolo_operator", "yolo_api",
               "yolo_trainer", "yolo_trainer.sinks.local", "yolo_trainer.reporter", "yolo_trainer.progress"]
    code = BLOCK_HEAVY + "".join(f"import {m}\n" for m in modules) + "print('ok')"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    blocked = run_python(BLOCK_HEAVY + "import torch")
    assert blocked.returncode != 0  # the blocker really blocks


def test_stdlib_operator_is_not_shadowed() -> None:
    result = run_python("import operator; print(operator.add(1, 2), operator.__file__)")
    assert result.returncode == 0 and result.stdout.startswith("3 ")
    assert "site-packages" not in result.stdout and str(ROOT) not in result.stdout
    assert not list(ROOT.glob("operator/__init__.py")) and not list(ROOT.glob("**/src/operator"))


def test_the_trainer_image_installs_the_torch_the_tests_run_with() -> None:
    trainer = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["trainer"]
    pinned = dict(re.findall(r"^(torch|torchvision)==(\S+)$", "\n".join(trainer), re.MULTILINE))
    dockerfile = (ROOT / "trainer_image/Dockerfile").read_text()
    built = dict(re.findall(r"\b(TORCH|TORCHVISION)_VERSION=(\S+)", dockerfile))
    assert {"torch": built["TORCH"], "torchvision": built["TORCHVISION"]} == pinned
    assert '"torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"' in dockerfile


def test_every_package_is_in_the_one_wheel_that_every_image_installs() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
                 ["packages"])
    found = {str(init.parent.relative_to(ROOT)) for init in ROOT.glob("*/src/*/__init__.py")}
    assert "operator/src/yolo_io" in found and listed == found
