"""Kubernetes credentials for every component: the pod's service account, else KUBECONFIG.

No API call happens here. KUBECONFIG is read when the client is built, not when the kubernetes library
is imported (its default path is fixed at import time, which tests and subprocesses trip over).
"""

import os
from typing import Any


def load_api_client() -> Any:
    """A ``kubernetes.client.ApiClient`` from in-cluster credentials, else from KUBECONFIG."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()
