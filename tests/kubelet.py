"""A stand-in node (kubelet) that runs each trainer pod as a local process, for clusters that cannot run the image.

Used where no node can run the trainer image: against the emulated API server in the integration tests,
and by the opt-in e2e suite (``--local-kubelet``). It plays exactly the kubelet's part, so the rest is
done by whoever does it on a real cluster:

* it registers a Node and keeps its Lease and Ready condition fresh, as a kubelet does; on a real
  cluster the Node is tainted ``yolo-operator.io/local-kubelet=true:NoSchedule`` and a training asks for
  it with :meth:`LocalKubelet.placement` (so no other pod lands here, and no trainer on a real node);
* **on a real control plane** (kube-controller-manager and kube-scheduler hold their leader Leases, or,
  run without leader election, kube-system's ``default`` ServiceAccount exists) the real scheduler binds
  our pods to it, the real Job controller creates and counts them, the real garbage collector removes them;
* **on the emulator or a bare kube-apiserver** it also steps ``tests/controlplane.py``'s stand-ins for
  the Job controller and the scheduler (``controllers=True`` forces that, ``False`` forbids it).

For each of our pods bound to its node it runs the container's command with the container's environment
(``valueFrom.fieldRef`` resolved, ``valueFrom.secretKeyRef`` read from the API server's Secrets, as a kubelet does: a missing Secret or key
that is not ``optional`` leaves the container waiting with CreateContainerConfigError; the test process's
own ``AWS_*`` variables never leak into a pod), plus a kubeconfig, so the trainer's Kubernetes sink
reaches the same API server, and writes the pod's
status as a kubelet does: Running with a running container, then Succeeded or Failed with the exit code
and, on failure, the log's tail as the termination message (``FallbackToLogsOnError``). A pod that is
deleted (suspension, eviction, garbage collection) has its process killed, its status set Failed, and is
then deleted with no grace period. ``preempt(namespace, job)`` evicts a running trainer's pod through the
Eviction API, as a node drain does (the API server adds ``DisruptionTarget``).

Simplifications: no image pulls, no resource accounting, volumes are not mounted (the trainer's output
directory is mapped to a local folder per Job that persists across attempts, like a PVC would).
``tests/podkubelet.py`` is the same node with a container runtime: it runs every pod bound to it from its
image, with podman.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from controlplane import MANAGED, ControlPlane
from fake_trainer import FakeProcess
from yolo_crd.status import utc_now

log = logging.getLogger(__name__)
TAINT = "yolo-operator.io/local-kubelet"  # on a real cluster: only pods that ask for this node come to it


@dataclass
class _Attempt:
    pod: str
    job: str
    process: subprocess.Popen[bytes] | FakeProcess
    log_path: Path | None
    ready: bool = True


def _field(pod: dict[str, Any], path: str) -> str:
    """A ``fieldRef`` value as a kubelet resolves it (the pod IP is the node's: pods share its network)."""
    meta, spec = pod["metadata"], pod["spec"]
    if path.startswith(("metadata.labels['", "metadata.annotations['")):
        kind, key = path.removeprefix("metadata.").removesuffix("']").split("['")
        return str((meta.get(kind) or {}).get(key, ""))
    values = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
              "spec.nodeName": spec.get("nodeName", ""), "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
    return values[path]


def _control_plane_runs_controllers(api: client.ApiClient) -> bool:
    """True when kube-controller-manager and kube-scheduler run (a real control plane).

    They show it by their fresh leader Leases; run without leader election (as ``../shared/kube`` runs them)
    they hold none, and the controller-manager shows it by the ``default`` ServiceAccount its ServiceAccount
    controller makes in kube-system, which a bare kube-apiserver (or the emulator) never has. The scheduler
    is then taken to run beside it.
    """
    leases = client.CoordinationV1Api(api)
    try:
        for name in ("kube-controller-manager", "kube-scheduler"):
            renewed = leases.read_namespaced_lease(name, "kube-system").spec.renew_time
            if renewed is None or (dt.datetime.now(dt.UTC) - renewed).total_seconds() > 120:
                return False
    except client.ApiException as exc:
        if exc.status != 404:
            return False
        try:
            client.CoreV1Api(api).read_namespaced_service_account("default", "kube-system")
        except client.ApiException:
            return False
    return True


class LocalKubelet:
    """See the module docstring."""

    def __init__(self, api: client.ApiClient, kubeconfig: Path, workdir: Path, *, poll: float = 0.2,
                 fake_trainer: bool = False, controllers: bool | None = None, heartbeat: float = 10.0,
                 taint: bool | None = None) -> None:
        self._api = api
        self._taint = taint
        self._fake = fake_trainer
        self._core = client.CoreV1Api(api)
        self._sanitize = api.sanitize_for_serialization
        self._kubeconfig = kubeconfig
        self._workdir = workdir
        self._poll = poll
        self._heartbeat_seconds = heartbeat
        if controllers is None:
            controllers = not _control_plane_runs_controllers(api)
        self._control = ControlPlane(api) if controllers else None
        self.controllers = controllers  # whether it steps the stand-ins of the Job controller and scheduler
        self.node = f"local-kubelet-{uuid.uuid4().hex[:6]}"
        self._running: dict[tuple[str, str], _Attempt] = {}
        self._config_errors: dict[tuple[str, str], str] = {}  # pods waiting for a Secret: what was said
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="local-kubelet", daemon=True)
        self._addresses: dict[str, Any] = {}  # podIP and hostIP, where the node has a network
        self.started: list[str] = []  # names of the Jobs whose pods were started, in order, one per attempt
        self.heartbeats = 0

    def __enter__(self) -> LocalKubelet:
        self._register_node()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for attempt in self._running.values():
            self._kill(attempt)
        try:
            self._core.delete_node(self.node)
            client.CoordinationV1Api(self._api).delete_namespaced_lease(self.node, "kube-node-lease")
        except client.ApiException as exc:
            log.warning("local kubelet: could not deregister node %s: %s", self.node, exc)

    def preempt(self, namespace: str, job: str) -> None:
        """Evict the running trainer pod of a Job, as a node drain does (a DisruptionTarget pod failure)."""
        with self._lock:
            [(key, _)] = [(k, a) for k, a in self._running.items() if k[0] == namespace and a.job == job]
        self._core.create_namespaced_pod_eviction(key[1], namespace, {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": key[1], "namespace": namespace}},
            _preload_content=False)

    # -- the loop ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        beat = 0.0
        while not self._stop.wait(self._poll):
            try:
                if self._control is not None:
                    self._control.step()
                beat += self._poll
                if beat >= self._heartbeat_seconds:
                    self._heartbeat()
                    beat = 0.0
                pods = self._list_pods()
                with self._lock:
                    self._pods(pods)
            except Exception as exc:  # the API server is down: a kubelet keeps its pods and retries
                log.warning("local kubelet: %s; retrying", exc)

    def _list_pods(self) -> list[dict[str, Any]]:
        """The pods this node looks at: ours (the trainers), wherever they are bound."""
        return [self._sanitize(p) for p in self._core.list_pod_for_all_namespaces(label_selector=MANAGED).items]

    def _pods(self, pods: list[dict[str, Any]]) -> None:
        present = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        for key in [k for k in self._running if k not in present]:  # deleted outright: stop its process
            self._kill(self._running.pop(key))
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            key = (meta["namespace"], meta["name"])
            if spec.get("nodeName") != self.node:
                continue
            attempt = self._running.get(key)
            phase = (pod.get("status") or {}).get("phase")
            if meta.get("deletionTimestamp"):
                if attempt is not None:
                    self._kill(attempt)
                    del self._running[key]
                if phase not in ("Succeeded", "Failed"):
                    self._terminated(pod, 137, "Error", "")
                self._core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)
            elif attempt is None and phase not in ("Succeeded", "Failed"):
                self._start(pod)
            elif attempt is not None and (code := attempt.process.poll()) is not None:
                del self._running[key]
                self._terminated(pod, code, "Completed" if code == 0 else "Error", self._tail(attempt))
            elif attempt is not None and not attempt.ready and self._probe(pod):
                attempt.ready = True
                self._patch_ready(pod)

    # -- one pod -------------------------------------------------------------------------------------

    def _env(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str] | str:
        """The container's environment, or why it cannot be made (CreateContainerConfigError's message)."""
        namespace = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for item in container.get("env", []):
            source = item.get("valueFrom") or {}
            if "fieldRef" in source:
                env[item["name"]] = _field(pod, source["fieldRef"]["fieldPath"])
                continue
            ref = source.get("secretKeyRef")
            if ref is None:
                env[item["name"]] = item.get("value", "")
                continue
            try:
                data = self._core.read_namespaced_secret(ref["name"], namespace).data or {}
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                data = None
            if data is not None and ref["key"] in data:
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                return (f'secret "{ref["name"]}" not found' if data is None else
                        f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}")
        return env

    def _start(self, pod: dict[str, Any]) -> None:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        namespace, job = meta["namespace"], meta["labels"].get("batch.kubernetes.io/job-name", meta["name"])
        env = self._env(pod, container)
        if isinstance(env, str):
            if self._config_errors.get((namespace, meta["name"])) != env:  # say it once; retried every poll
                self._config_errors[(namespace, meta["name"])] = env
                self._core.patch_namespaced_pod_status(meta["name"], namespace, {"status": {"containerStatuses": [
                    {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                     "restartCount": 0, "state": {"waiting": {"reason": "CreateContainerConfigError",
                                                              "message": env}}}]}})
            return
        process, log_path = self._launch(pod, container, env, job)
        ready = "readinessProbe" not in container
        self._running[(namespace, meta["name"])] = _Attempt(meta["name"], job, process, log_path, ready)
        self.started.append(job)
        now = utc_now()
        conditions = [{"type": kind, "status": "True" if ready or kind == "Initialized" else "False",
                       "lastTransitionTime": now} for kind in ("Initialized", "ContainersReady", "Ready")]
        scheduled = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"]
        self._core.patch_namespaced_pod_status(meta["name"], namespace, {"status": {
            "phase": "Running", "startTime": now, **self._addresses, "conditions": scheduled + conditions,
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": ready, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": now}}}]}})

    def _launch(self, pod: dict[str, Any], container: dict[str, Any], env: dict[str, str],
                job: str) -> tuple[subprocess.Popen[bytes] | FakeProcess, Path | None]:
        """Start the container's process: the trainer's command in this Python (or the fake trainer)."""
        meta = pod["metadata"]
        if self._fake:
            return FakeProcess(env, self._api), None
        env["YOLO_TRAINER_OUTPUT_DIR"] = str(self._workdir / meta["namespace"] / job)
        environ = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST" and not k.startswith("AWS_")}
        command = container["command"]
        command = [sys.executable, *command[1:]] if command[0] == "python" else command
        log_path = self._workdir / f"{meta['name']}.log"
        with log_path.open("wb") as output:
            process = subprocess.Popen(command, env={**environ, **env, "KUBECONFIG": str(self._kubeconfig)},
                                       stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        return process, log_path

    def _probe(self, pod: dict[str, Any]) -> bool:
        """Whether a started container that has a readinessProbe passes it now (the podman node probes)."""
        return True

    def _patch_ready(self, pod: dict[str, Any]) -> None:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        now = utc_now()
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") not in ("Ready", "ContainersReady")]
        conditions += [{"type": kind, "status": "True", "lastTransitionTime": now}
                       for kind in ("ContainersReady", "Ready")]
        statuses = (pod.get("status") or {}).get("containerStatuses") or [{"name": container["name"]}]
        self._core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": {
            "conditions": conditions, "containerStatuses": [{**statuses[0], "ready": True}]}})

    def _terminated(self, pod: dict[str, Any], code: int, reason: str, message: str) -> None:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        terminated: dict[str, Any] = {"exitCode": code, "reason": reason, "finishedAt": utc_now()}
        if message:
            terminated["message"] = message
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") not in ("Ready", "ContainersReady")]
        self._core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": {
            "phase": "Succeeded" if code == 0 else "Failed", "conditions": conditions,
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": False, "restartCount": 0, "state": {"terminated": terminated}}]}})

    @staticmethod
    def _tail(attempt: _Attempt) -> str:
        if attempt.log_path is None or not attempt.log_path.exists():
            return ""
        return attempt.log_path.read_bytes()[-2048:].decode(errors="replace")

    def _kill(self, attempt: _Attempt) -> None:
        if isinstance(attempt.process, subprocess.Popen) and attempt.process.poll() is None:
            os.killpg(attempt.process.pid, signal.SIGKILL)
            attempt.process.wait()

    # -- the node, on a real cluster -----------------------------------------------------------------

    def placement(self) -> dict[str, Any]:
        """The spec fields (``nodeSelector``, ``tolerations``) that put a training's pod on this node.

        On a real cluster the node is tainted, so the real scheduler never sends other pods to it, and a
        trainer pod never lands on a real node that would try to pull the image.
        """
        return {"nodeSelector": {"kubernetes.io/hostname": self.node},
                "tolerations": [{"key": TAINT, "operator": "Equal", "value": "true", "effect": "NoSchedule"}]}

    def _register_node(self) -> None:
        tainted = self._control is None if self._taint is None else self._taint
        taints = [{"key": TAINT, "value": "true", "effect": "NoSchedule"}] if tainted else []
        self._core.create_node({"metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node}},
                                "spec": {"taints": taints}})
        client.CoordinationV1Api(self._api).create_namespaced_lease("kube-node-lease", {
            "metadata": {"name": self.node}, "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40,
                                                      "renewTime": dt.datetime.now(dt.UTC).isoformat()}})
        self._heartbeat()

    def _heartbeat(self) -> None:
        now = utc_now()
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        self._core.patch_node_status(self.node, {"status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "local kubelet",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}]}})
        client.CoordinationV1Api(self._api).patch_namespaced_lease(
            self.node, "kube-node-lease", {"spec": {"renewTime": dt.datetime.now(dt.UTC).isoformat()}})
        self.heartbeats += 1
