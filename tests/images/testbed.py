"""What the image tests share: the image names, an HTTPS API server with in-cluster credentials, the chart's pods.

The images are ``yolo-{operator,api,trainer}:$YOLO_IMAGE_TAG`` (default ``dev``), as ``make images`` tags them.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from apiserver import ApiServer
from crd import ROOT
from pods import InCluster

TAG = os.environ.get("YOLO_IMAGE_TAG", "dev")
IMAGES = {name: f"yolo-{name}:{TAG}" for name in ("operator", "api", "trainer")}
CHART = ROOT / "deploy/helm/yolo-training-operator"
GROUP, VERSION, PLURAL = "yolo-operator.io", "v1alpha1", "yolotrainings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readable(path: Path) -> Path:
    """Open a host folder (pytest makes them 0700) to the containers' non-root users, as a volume would be."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


@dataclass
class Cluster:
    """The emulated API server over HTTPS, the credentials its pods get, and a client for the test itself."""

    server: ApiServer
    in_cluster: InCluster
    http: httpx.Client

    @classmethod
    def start(cls, credentials: Path) -> Cluster:
        """Serve HTTPS with a certificate from a CA made here; write a kubelet's token, ca.crt and namespace."""
        authority = trustme.CA()
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(serving)
        trusting = ssl.create_default_context()
        authority.configure_trust(trusting)
        readable(credentials)
        authority.cert_pem.write_to_path(str(credentials / "ca.crt"))
        (credentials / "token").write_text("image-test-service-account-token")
        (credentials / "namespace").write_text("yolo-system")
        for item in credentials.iterdir():
            item.chmod(0o644)
        server = ApiServer(tls=serving)
        assert server.port is not None
        http = httpx.Client(base_url=server.url, verify=trusting, timeout=10,
                            headers={"Authorization": "Bearer image-test"})
        return cls(server, InCluster("127.0.0.1", server.port, credentials), http)

    def close(self) -> None:
        self.http.close()
        self.server.close()

    def create_training(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "YoloTraining", "metadata": {"name": name}, "spec": spec}
        created = self.http.post(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", json=body)
        assert created.status_code == 201, created.text
        return dict(created.json())

    def jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.http.get(f"/apis/batch/v1/namespaces/{namespace}/jobs", params={"labelSelector": selector})
        assert found.status_code == 200, found.text
        return list(found.json()["items"])

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.server.emulator.get(PLURAL, namespace, name)
        return dict((obj or {}).get("status") or {})


def helm() -> str:
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("helm is not installed: run `make install` (it puts helm into .venv/bin)")
    return found


def chart_pod(component: str, *settings: str) -> dict[str, Any]:
    """The pod spec of the chart's ``component`` Deployment, rendered with these images and ``--set`` values."""
    images = [f"{part}.image.{key}={value}" for part in IMAGES
              for key, value in (("repository", f"yolo-{part}"), ("tag", TAG))]
    command = [helm(), "template", "yolo", str(CHART), "--namespace", "yolo-system",
               *(arg for setting in [*images, *settings] for arg in ("--set", setting))]
    rendered = subprocess.run(command, capture_output=True, text=True, check=False)
    assert rendered.returncode == 0, rendered.stderr
    deployment = next(doc for doc in yaml.safe_load_all(rendered.stdout)
                      if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith(f"-{component}"))
    return dict(deployment["spec"]["template"]["spec"])
