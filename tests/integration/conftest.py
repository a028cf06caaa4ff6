"""Fixtures of the integration tests: a Kubernetes client for the emulated API server."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from apiserver import ApiServer


@pytest.fixture
def kube(api_server: ApiServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))) as api:
        yield api
