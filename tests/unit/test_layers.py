"""No component imports another's package: each talks to the others through the contract (``yolo_crd``), the
shared I/O (``yolo_io``) or a process boundary (``python -m yolo_trainer``). The trainer image ships no API
dependencies and the API image no trainer dependencies, so such an import fails only in production."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {
    "yolo_api": ROOT / "api/src/yolo_api",
    "yolo_operator": ROOT / "operator/src/yolo_operator",
    "yolo_trainer": ROOT / "trainer_image/src/yolo_trainer",
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports, anywhere in it (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_no_component_imports_another(component: str) -> None:
    others = set(COMPONENTS) - {component}
    offenders = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & others)
                 for path in COMPONENTS[component].rglob("*.py") if imported_packages(path) & others}
    assert offenders == {}
