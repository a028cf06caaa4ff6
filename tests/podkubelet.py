"""A stand-in node that runs the containers of the pods bound to it with podman, for the chart's e2e test.

:class:`PodmanKubelet` is :class:`kubelet.LocalKubelet` with a container runtime: where the local kubelet
runs a trainer's command as a local process, this one runs every pod bound to its node (the chart's
operator and API pods, the trainers' pods the operator's Jobs make) from the pod's image, the way
``tests/pods.py`` runs the images in the image tests, and does what a kubelet does around it:

* the environment: literal values, ``secretKeyRef`` (read from the API server; a missing Secret leaves the
  container waiting with CreateContainerConfigError) and ``fieldRef``;
* ``projected`` volumes, as the ServiceAccount admission plugin adds one to every pod: a token bound to
  the pod (TokenRequest), ConfigMap keys (the CA of ``kube-root-ca.crt``), downward-API fields (the
  namespace), mounted read-only (at ``/var/run/secrets/kubernetes.io/serviceaccount``);
  ``KUBERNETES_SERVICE_HOST``/``PORT`` point at the API server of the kubeconfig (127.0.0.1: the control
  plane of ``../shared/kube`` listens on loopback only);
* the pod's and container's securityContext as ``tests/pods.py`` applies it (read-only root filesystem,
  non-root user, no capabilities); emptyDirs are tmpfs; a persistentVolumeClaim is mounted from the host
  folder of the PersistentVolume bound to it (``hostPath`` volumes only), with the pod's ``fsGroup``;
* the network: every container shares the host's (``--network host``), so the pod IP is 127.0.0.1 and
  a container port is a port on the host; two pods listening on one port cannot share this node;
* Ready: a container without a readinessProbe is Ready once started; one with an ``httpGet`` readiness
  probe is Ready once the probe answers 2xx or 3xx on 127.0.0.1 (then never probed again);
* ends: the container's exit code ends the pod (Succeeded or Failed, the log's tail as termination
  message); a pod with a deletionTimestamp has its container removed at once.

Not done: restarts (a Deployment's pod whose container exits stays Failed and its ReplicaSet makes a new
pod), liveness and startup probes, init and sidecar containers (the first container runs, alone), image
pulls (``--pull never``: the images must be built on this host), resource limits.
"""

from __future__ import annotations

import subprocess
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

from fake_trainer import FakeProcess
from kubelet import LocalKubelet, _Attempt, _field
from pods import Engine, container_flags


class PodmanKubelet(LocalKubelet):
    """See the module docstring. ``taint=False`` makes a node that takes any pod, as a one-node cluster's does."""

    def __init__(self, api: client.ApiClient, kubeconfig: Path, workdir: Path, *, engine: Engine | None = None,
                 poll: float = 0.5, taint: bool = True) -> None:
        super().__init__(api, kubeconfig, workdir, poll=poll, controllers=False, taint=taint)
        self._engine = engine or Engine()
        self._server = urllib.parse.urlsplit(api.configuration.host)
        self._addresses = {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "hostIP": "127.0.0.1"}
        self._containers: dict[int, str] = {}  # by process id: the container's name, to remove it

    def _list_pods(self) -> list[dict[str, Any]]:
        """Every pod bound to this node, as a kubelet watches them (a field selector on spec.nodeName)."""
        found = self._core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}")
        return [self._sanitize(pod) for pod in found.items]

    def _launch(self, pod: dict[str, Any], container: dict[str, Any], env: dict[str, str],
                job: str) -> tuple[subprocess.Popen[bytes] | FakeProcess, Path | None]:
        meta, spec = pod["metadata"], pod["spec"]
        folder = self._workdir / "pods" / meta["namespace"] / meta["name"]
        folder.mkdir(parents=True, exist_ok=True)
        # in-cluster clients find the API server here (the `kubernetes` Service has no endpoints on this node)
        cluster = {"KUBERNETES_SERVICE_HOST": self._server.hostname or "127.0.0.1",
                   "KUBERNETES_SERVICE_PORT": str(self._server.port or 443)}
        resolved = {**container, "env": [{"name": name, "value": value} for name, value in {**env, **cluster}.items()]}
        projected = {volume["name"]: self._project(pod, volume["projected"], folder / "volumes" / volume["name"])
                     for volume in spec.get("volumes") or [] if "projected" in volume}
        flags = container_flags(spec, resolved, claims=self._claims(pod), cluster=None, engine=self._engine,
                                projected=projected)
        name = f"yolo-kubelet-{meta['name'][:40]}-{uuid.uuid4().hex[:6]}"
        log_path = folder / "container.log"
        with log_path.open("wb") as output:
            process = subprocess.Popen([self._engine.command, "run", "--rm", "--name", name, "--pull", "never",
                                        "--network", "host", *flags, container["image"], *container.get("args", [])],
                                       stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        self._containers[process.pid] = name
        return process, log_path

    def _project(self, pod: dict[str, Any], volume: dict[str, Any], folder: Path) -> Path:
        """A projected volume's files, as the kubelet writes them (the ServiceAccount admission plugin adds one
        with the pod's token, the cluster CA and the namespace): a service-account token bound to the pod
        (TokenRequest), ConfigMap keys, downward-API fields."""
        meta = pod["metadata"]
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        files: dict[str, str] = {}
        for source in volume.get("sources") or []:
            if token := source.get("serviceAccountToken"):
                request = {"spec": {"audiences": [token["audience"]] if token.get("audience") else [],
                                    "expirationSeconds": token.get("expirationSeconds", 3600),
                                    "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                                       "uid": meta["uid"]}}}
                files[token["path"]] = self._core.create_namespaced_service_account_token(
                    pod["spec"].get("serviceAccountName", "default"), meta["namespace"], request).status.token
            elif config := source.get("configMap"):
                try:
                    data = self._core.read_namespaced_config_map(config["name"], meta["namespace"]).data or {}
                except client.ApiException as exc:
                    # openshift-service-ca.crt: MicroShift's ServiceAccount admission adds it; nothing here
                    # publishes it, so it is taken as optional
                    if exc.status == 404 and (config.get("optional") or config["name"] == "openshift-service-ca.crt"):
                        continue
                    raise
                for item in config.get("items") or [{"key": key, "path": key} for key in data]:
                    files[item["path"]] = data[item["key"]]
            elif downward := source.get("downwardAPI"):
                for item in downward.get("items") or []:
                    files[item["path"]] = _field(pod, item["fieldRef"]["fieldPath"])
            else:
                raise ValueError(f"the podman node does not project {source}")
        for path, content in files.items():
            (folder / path).write_text(content)
            (folder / path).chmod(0o644)
        return folder

    def _claims(self, pod: dict[str, Any]) -> dict[str, Path]:
        """Host folders of the pod's claims: the ``hostPath`` of the PersistentVolume each is bound to."""
        claims: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            if "persistentVolumeClaim" not in volume:
                continue
            name = volume["persistentVolumeClaim"]["claimName"]
            claim = self._core.read_namespaced_persistent_volume_claim(name, pod["metadata"]["namespace"])
            bound = self._core.read_persistent_volume(claim.spec.volume_name)
            if bound.spec.host_path is None:
                raise ValueError(f"the podman node mounts hostPath PersistentVolumes only, not {bound.metadata.name}")
            claims[name] = Path(bound.spec.host_path.path)
        return claims

    def _probe(self, pod: dict[str, Any]) -> bool:
        container = pod["spec"]["containers"][0]
        get = (container.get("readinessProbe") or {}).get("httpGet")
        if get is None:
            return True
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port)
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}{get.get('path', '/')}", timeout=2)
        except httpx.TransportError:
            return False
        return 200 <= answer.status_code < 400

    def _kill(self, attempt: _Attempt) -> None:
        process = attempt.process
        if isinstance(process, subprocess.Popen):
            stop_now = ["--time", "0"] if self._engine.command.endswith("podman") else []  # docker's rm -f kills
            self._engine("rm", "--force", *stop_now, self._containers.pop(process.pid, ""))
            process.wait()

    def logs(self, lines: int = 30) -> str:
        """The last lines of every container this node ran (for a failing test's message)."""
        return "\n".join(f"--- {path.parent.parent.name}/{path.parent.name}:\n"
                         + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                         for path in sorted((self._workdir / "pods").glob("*/*/container.log")))
