"""A kubelet in miniature for the image tests: runs one container of a pod spec with podman (or docker).

It takes the pod spec exactly as the chart or the operator wrote it (image, command, args, env, user and
group, volume mounts) and adds what a kubelet adds: the service-account token, CA and namespace at
``/var/run/secrets/kubernetes.io/serviceaccount`` and ``KUBERNETES_SERVICE_HOST``/``PORT``. Every container
runs hardened the way the chart's pods are: a read-only root filesystem, a writable ``/tmp`` only, no
capabilities, no privilege escalation, a non-root uid. Persistent volume claims map to host folders, which
get the pod's ``fsGroup`` as a kubelet gives it (group owner, group-writable); emptyDirs are tmpfs.

Not emulated (fails loudly): other volume types, ``valueFrom`` environment variables, probes, restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class InCluster:
    """How pods reach the API server: its address, and the credentials folder (token, ca.crt, namespace)."""

    host: str
    port: int
    credentials: Path


@dataclass
class Engine:
    """The container engine's command line (podman, else docker)."""

    command: str = field(default_factory=lambda: os.environ.get("YOLO_IMAGE_ENGINE") or (
        "podman" if shutil.which("podman") else "docker"))

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.command, *args], capture_output=True, text=True, timeout=timeout, check=False)

    def hardening(self) -> list[str]:
        """Read-only root, a /tmp like an emptyDir (writable by all, not noexec), no capabilities or escalation."""
        flags = ["--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777", "--cap-drop", "ALL",
                 "--security-opt", "no-new-privileges"]
        if Path(self.command).name == "podman":
            flags.append("--read-only-tmpfs=false")  # podman would also make /run and /var/tmp writable
        return flags


def _shm_size(quantity: str | None) -> str:
    """A Kubernetes quantity ("2Gi", "512Mi") as an engine size ("2048m"); 64m (the engines' default) if unset."""
    if not quantity:
        return "64m"
    for suffix, mebibytes in (("Gi", 1024), ("Mi", 1)):
        if quantity.endswith(suffix):
            return f"{int(quantity.removesuffix(suffix)) * mebibytes}m"
    raise ValueError(f"pods.py reads sizes in Gi or Mi only, not {quantity!r}")


def _grant_group(path: Path, gid: int) -> None:
    """What a kubelet does to a volume for ``fsGroup``: the group owns it and may write it."""
    for item in [path, *path.rglob("*")]:
        os.chown(item, -1, gid)
        item.chmod(item.stat().st_mode | (0o070 if item.is_dir() else 0o060))


def container_flags(pod: dict[str, Any], container: dict[str, Any], *, claims: dict[str, Path],
                    cluster: InCluster | None, engine: Engine, projected: dict[str, Path] | None = None) -> list[str]:
    """The engine's ``run`` flags for ``container`` of ``pod`` (a pod spec), image and args excluded.

    ``projected``: host folders with the files of the pod's ``projected`` volumes, by volume name (the
    stand-in node of tests/podkubelet.py writes them), mounted read-only as a kubelet mounts them.
    """
    pod_security, security = pod.get("securityContext") or {}, container.get("securityContext") or {}
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup", uid))
    if uid is None or int(uid) == 0:
        raise ValueError(f"container {container['name']} must name a non-root runAsUser, has {uid!r}")
    flags = [*engine.hardening(), "--user", f"{uid}:{gid}"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume, target = volumes[mount["name"]], mount["mountPath"]
        if "persistentVolumeClaim" in volume:
            source = claims[volume["persistentVolumeClaim"]["claimName"]] / mount.get("subPath", "")
            if pod_security.get("fsGroup") is not None and not mount.get("readOnly"):
                _grant_group(source, int(pod_security["fsGroup"]))
            flags += ["--volume", f"{source}:{target}{':ro' if mount.get('readOnly') else ''}"]
        elif "emptyDir" in volume and target == "/dev/shm":
            flags += ["--shm-size", _shm_size(volume["emptyDir"].get("sizeLimit"))]
        elif "emptyDir" in volume and target != "/tmp":  # /tmp is already a tmpfs
            flags += ["--tmpfs", f"{target}:rw,exec,mode=1777"]
        elif "projected" in volume and volume["name"] in (projected or {}):
            flags += ["--volume", f"{(projected or {})[volume['name']]}:{target}:ro"]
        elif "emptyDir" not in volume:
            raise ValueError(f"pods.py does not emulate the volume {volume}")
    env = container.get("env") or []
    if unsupported := [item["name"] for item in env if "value" not in item]:
        raise ValueError(f"pods.py sets literal values only, not {unsupported}")
    pairs = [(item["name"], item["value"]) for item in env]
    if cluster is not None:
        pairs += [("KUBERNETES_SERVICE_HOST", cluster.host), ("KUBERNETES_SERVICE_PORT", str(cluster.port))]
        flags += ["--volume", f"{cluster.credentials}:{SERVICE_ACCOUNT_DIR}:ro"]
    for name, value in pairs:
        flags += ["--env", f"{name}={value}"]
    if container.get("command"):
        flags += ["--entrypoint", json.dumps(container["command"])]
    return flags


def run_pod(engine: Engine, pod: dict[str, Any], *, claims: dict[str, Path], cluster: InCluster | None,
            network: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the pod's first container to its end; its exit code and output (stdout and stderr merged)."""
    container = pod["containers"][0]
    name = f"yolo-image-test-{uuid.uuid4().hex[:8]}"
    flags = container_flags(pod, container, claims=claims, cluster=cluster, engine=engine)
    command = [engine.command, "run", "--rm", "--name", name, "--network", network, *flags, container["image"],
               *container.get("args", [])]
    try:
        return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        engine("rm", "--force", name)
        raise


@contextlib.contextmanager
def running(engine: Engine, pod: dict[str, Any], *, cluster: InCluster | None, network: str) -> Iterator[Runner]:
    """Start the pod's first container in the background; remove it on exit."""
    container = pod["containers"][0]
    runner = Runner(engine, f"yolo-image-test-{uuid.uuid4().hex[:8]}")
    flags = container_flags(pod, container, claims={}, cluster=cluster, engine=engine)
    try:
        started = engine("run", "--detach", "--name", runner.name, "--network", network, *flags,
                         container["image"], *container.get("args", []))
        assert started.returncode == 0, started.stderr  # a failed start can still leave a created container
        yield runner
    finally:
        engine("rm", "--force", runner.name)


@dataclass(frozen=True)
class Runner:
    """A container started by :func:`running`."""

    engine: Engine
    name: str

    def logs(self) -> str:
        result = self.engine("logs", self.name)
        return result.stdout + result.stderr

    def alive(self) -> bool:
        state = self.engine("inspect", "--format", "{{.State.Running}}", self.name)
        return state.stdout.strip() == "true"
