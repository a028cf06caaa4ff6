"""Fixtures of the image tests (``make image-test``): the container engine with the built images, the cluster.

``make image-test`` builds the images first; ``pytest tests/images --with-images`` uses images built before.
The engine is ``$YOLO_IMAGE_ENGINE``, default podman where installed, else docker.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from pods import Engine
from testbed import IMAGES, Cluster


@pytest.fixture(scope="session")
def engine() -> Engine:
    engine = Engine()
    if shutil.which(engine.command) is None:
        pytest.fail(f"{engine.command} is not installed (Debian: apt-get install podman runc); see docs/images.md")
    missing = [image for image in IMAGES.values() if engine("image", "inspect", image).returncode != 0]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)}; run `make images` (docs/images.md)")
    return engine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The emulated API server on HTTPS, and the service-account folder a kubelet would mount into pods."""
    cluster = Cluster.start(tmp_path_factory.mktemp("serviceaccount"))
    try:
        yield cluster
    finally:
        cluster.close()
