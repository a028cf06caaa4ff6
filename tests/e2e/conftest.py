"""Fixtures of the opt-in e2e suite (``pytest --with-e2e [--local-kubelet]`` with KUBECONFIG set).

The CRD is applied from the chart, each test gets a fresh namespace, and the real operator (kopf, in
this process) watches that namespace. With ``--local-kubelet`` the trainers run as local processes on a
stand-in node (tests/kubelet.py): on a cluster whose kube-controller-manager and kube-scheduler run, the
real Job controller, scheduler and garbage collector do their parts; on a bare kube-apiserver the
stand-ins of tests/controlplane.py do. A test that runs trainers passes ``**kubelet.placement()``
into the training's spec, so its pod goes to the stand-in node.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, config

from crd import CRD_PATH
from kubelet import LocalKubelet
from trainings import SWEEPS, G, P
from waiting import eventually


@pytest.fixture(scope="module")
def kube() -> Iterator[client.ApiClient]:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("--with-e2e needs KUBECONFIG pointing at a cluster")
    subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(CRD_PATH.parent)], check=True)
    for crd in (f"crd/{P}.{G}", f"crd/{SWEEPS}.{G}"):  # a CRD just made has no conditions yet: kubectl errs
        eventually(lambda crd=crd: subprocess.run(["kubectl", "wait", "--for=condition=Established", crd,
                                                   "--timeout=30s"], check=False).returncode == 0, timeout=60)
    with config.new_client_from_config(os.environ["KUBECONFIG"]) as api:
        yield api


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    name = f"yolo-e2e-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(kube).delete_namespace(name)


@pytest.fixture
def operator(namespace: str) -> Iterator[None]:
    with KopfRunner(["run", "-m", "yolo_operator.handlers", "--standalone", "--namespace", namespace]) as runner:
        yield
    assert runner.exit_code == 0, runner.output


@pytest.fixture
def kubelet(kube: client.ApiClient, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalKubelet]:
    if not request.config.getoption("--local-kubelet"):
        pytest.skip("needs --local-kubelet (or GPU nodes that can pull the trainer image)")
    with LocalKubelet(kube, Path(os.environ["KUBECONFIG"]), tmp_path, poll=0.5) as node:
        if os.environ.get("YOLO_E2E_CONTROLLERS") == "real":  # make e2e-local: only the node may be played
            assert not node.controllers, "the stand-in node took this control plane for a bare kube-apiserver"
        yield node
