"""Shared fixtures: the emulated API server, generated datasets, and the opt-in e2e and image switches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from apiserver import ApiServer
from s3server import S3Server

# Real trainings in tests draw no plots (2.5 to 3.5 s each, on 2 cores) unless their module asks for them
# (``from plotting import plots_drawn``): the modules that check plots do; the product's default is on.
os.environ.setdefault("YOLO_TRAINER_PLOTS", "false")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--with-e2e", action="store_true", default=False,
                     help="run the e2e tests against the cluster in KUBECONFIG")
    parser.addoption("--local-kubelet", action="store_true", default=False,
                     help="e2e: run each Job's trainer as a local process (a cluster without GPU nodes or any nodes)")
    parser.addoption("--with-images", action="store_true", default=False,
                     help="run the image tests against the built images (make image-test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    opt_in = {"e2e": config.getoption("--with-e2e"), "image": config.getoption("--with-images")}
    skipped = {marker for marker, chosen in opt_in.items() if not chosen}
    deselected = [item for item in items if skipped & {marker.name for marker in item.iter_markers()}]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """An emulated Kubernetes API server on a loopback port (see tests/emulator.py for its semantics)."""
    server = ApiServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def dataset3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic 3-class detection dataset (data.yaml path), generated once per session."""
    from yolo_trainer.synthetic import make_dataset

    return make_dataset(tmp_path_factory.mktemp("dataset3"), classes=3, train=48, val=16, imgsz=64)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) on loopback, started once per session (see tests/s3server.py)."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.close()
