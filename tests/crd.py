"""Helpers to read the CRD manifest from the chart and to apply its schema the way the API server does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CRD_PATH = ROOT / "deploy/helm/yolo-training-operator/crds/yolotrainings.yolo-operator.io.yaml"
SWEEP_CRD_PATH = CRD_PATH.parent / "yolosweeps.yolo-operator.io.yaml"


def load_crd() -> dict[str, Any]:
    return dict(yaml.safe_load(CRD_PATH.read_text(encoding="utf-8")))


def openapi_schema() -> dict[str, Any]:
    return dict(load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def sweep_openapi_schema() -> dict[str, Any]:
    """The YoloSweep CRD's schema."""
    crd = yaml.safe_load(SWEEP_CRD_PATH.read_text(encoding="utf-8"))
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def pruned_paths(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """The paths the API server would silently drop from ``value`` (structural-schema pruning)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        dropped: list[str] = []
        for key, item in value.items():
            if props is not None and key in props:
                dropped += pruned_paths(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                dropped += pruned_paths(item, extra, f"{path}.{key}")
            else:
                dropped.append(f"{path}.{key}")
        return dropped
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in pruned_paths(item, schema["items"], f"{path}[{i}]")]
    return []
