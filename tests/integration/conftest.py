"""Fixtures of the integration tests: a Kubernetes client for the emulated API server, and headless Chromium
for the dashboard's browser tests."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from playwright.sync_api import Browser, sync_playwright

from apiserver import ApiServer


@pytest.fixture
def kube(api_server: ApiServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))) as api:
        yield api


@pytest.fixture
def operator_kube(api_server: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[client.ApiClient]:
    """A client of the emulated API server, and the environment a kopf operator run in this process (KopfRunner)
    reads: the kubeconfig, no in-cluster service host, a trainer image."""
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("YOLO_OPERATOR_TRAINER_IMAGE", "registry.local/trainer:test")
    with config.new_client_from_config(str(kubeconfig)) as api:
        yield api


CHROMIUM = os.environ.get("YOLO_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags for a closed network: without the background-networking ones Chromium keeps dialling out.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (one per test module)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()
