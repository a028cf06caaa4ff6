"""Where in-cluster components find the API server: the address the kubelet puts into every pod."""

import pytest

from yolo_io.kubeclient import in_cluster_server


@pytest.mark.parametrize(("host", "port", "server"), [
    ("10.96.0.1", "443", "https://10.96.0.1:443"),
    ("fd00:10:96::1", "443", "https://[fd00:10:96::1]:443"),
    ("127.0.0.1", "6443", "https://127.0.0.1:6443"),
])
def test_the_kubelets_service_address_is_the_server(host: str, port: str, server: str) -> None:
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}) == server


@pytest.mark.parametrize("environ", [{}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT": "443"}])
def test_outside_a_pod_there_is_none(environ: dict[str, str]) -> None:
    assert in_cluster_server(environ) is None
