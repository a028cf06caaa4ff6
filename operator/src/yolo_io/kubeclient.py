"""Kubernetes credentials, loaded the same way by every component's gateway: the pod's service account, else
KUBECONFIG.

No API call happens here. KUBECONFIG is read when the client is built, not when the kubernetes library
is imported (its default path is fixed at import time, which tests and subprocesses trip over).
"""

import os
from collections.abc import Mapping
from typing import Any


def load_api_client() -> Any:
    """A ``kubernetes.client.ApiClient`` from in-cluster credentials, else from KUBECONFIG."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


def in_cluster_server(environ: Mapping[str, str] = os.environ) -> str | None:
    """The API server's URL from ``KUBERNETES_SERVICE_HOST``/``PORT``, which the kubelet sets in every pod.

    The kubernetes client and client-go connect there; kopf's service-account login assumes
    ``https://kubernetes.default.svc``, which pods on the host network or without cluster DNS cannot resolve.
    None outside a pod.
    """
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
