"""A stand-in for the Job controller, the scheduler and the kubelet: runs each Job's trainer as a local process.

Used where no node can run the trainer image: against the emulated API server in the integration tests,
and by the opt-in e2e suite on a bare control plane (``--local-kubelet``). For every unsuspended Job
labelled as ours it creates a Pod object, runs the container's command with the container's environment
(plus a kubeconfig, so the trainer's Kubernetes sink reaches the same API server), and writes the outcome
back the way the real controllers do: Pod phase and container state, Job conditions, retries up to
``backoffLimit``, ``podFailurePolicy`` (FailJob on the listed exit codes, Ignore for disruptions) and
``suspend`` (the pod is killed). ``preempt(job)`` kills a running trainer as a node drain would.

Like the real Job controller (Kubernetes 1.31+) it reaches a verdict in steps that watchers see one by
one, a poll interval apart: the ended pod first appears in ``uncountedTerminatedPods`` with ``active: 0``,
then the counts and the intermediate condition (``SuccessCriteriaMet`` or ``FailureTarget``, with the
reason), and only then ``Complete`` or ``Failed``. Between a failed attempt and its replacement the Job
has no active pod. Pods are owned by their Job, so the garbage collector removes them after it.

Simplifications: one pod per Job at a time (parallelism 1, as our Jobs are), no resource accounting, the
output directory is mapped to a local folder that persists across attempts (like a PVC would).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from yolo_crd.status import utc_now

MANAGED = "app.kubernetes.io/managed-by=yolo-training-operator"
log = logging.getLogger(__name__)


@dataclass
class _Attempt:
    pod: str
    process: subprocess.Popen[bytes] | _FakeProcess
    disrupted: bool = False


class _FakeProcess:
    """A fast trainer stand-in in a thread: reports two epochs and final metrics through the real sink."""

    def __init__(self, env: dict[str, str], api: client.ApiClient) -> None:
        self.pid = -1
        self.returncode: int | None = None
        self._thread = threading.Thread(target=self._run, args=(env, api), daemon=True)
        self._thread.start()

    def _run(self, env: dict[str, str], api: client.ApiClient) -> None:
        from yolo_crd.status import FinalMetrics, StopReason
        from yolo_trainer.progress import ProgressTracker, epoch_metrics
        from yolo_trainer.reporter import StatusReporter
        from yolo_trainer.sinks.kubernetes import KubernetesStatusSink

        reporter = StatusReporter(KubernetesStatusSink(env["YOLO_TRAINER_NAMESPACE"], env["YOLO_TRAINER_NAME"],
                                                          uid=env["YOLO_TRAINER_TASK_ID"], api_client=api),
                                  min_interval=0.2, max_backoff=2.0)
        tracker = ProgressTracker(2)
        reporter.update(tracker.initializing())
        reporter.update(tracker.started(0, 2))
        for epoch in (1, 2):
            row = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.5, "metrics/mAP50(B)": 0.4 + epoch / 10,
                   "metrics/mAP50-95(B)": 0.2}
            reporter.update(tracker.epoch_done(epoch_metrics(epoch, row), 2, last=epoch == 2) or {})
        final = FinalMetrics.from_validation(0.6, 0.2, 0.5, 0.5)
        reporter.update(tracker.completed(final, "/fake/weights/best.pt", "/fake", StopReason.EPOCHS))
        self.returncode = 0 if reporter.close(timeout=60) else 3

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def wait(self) -> int | None:
        self._thread.join()
        return self.returncode


class LocalKubelet:
    """See the module docstring."""

    def __init__(self, api: client.ApiClient, kubeconfig: Path, workdir: Path, *, poll: float = 0.2,
                 fake_trainer: bool = False) -> None:
        self._api = api
        self._fake = fake_trainer
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._sanitize = api.sanitize_for_serialization
        self._kubeconfig = kubeconfig
        self._workdir = workdir
        self._poll = poll
        self._running: dict[tuple[str, str], _Attempt] = {}
        self._failures: dict[tuple[str, str], int] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self._done: set[tuple[str, str]] = set()
        self._steps: dict[tuple[str, str], list[dict[str, Any]]] = {}  # Job status writes still to come
        self._pod_uids: dict[str, str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="local-kubelet", daemon=True)
        self.started: list[str] = []

    def __enter__(self) -> LocalKubelet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for attempt in self._running.values():
            if attempt.process.poll() is None and isinstance(attempt.process, subprocess.Popen):
                os.killpg(attempt.process.pid, signal.SIGKILL)
                attempt.process.wait()

    def preempt(self, namespace: str, job: str) -> None:
        """Kill the running trainer of a Job as a node drain would (a DisruptionTarget pod failure)."""
        with self._lock:
            attempt = self._running[(namespace, job)]
            attempt.disrupted = True
            os.killpg(attempt.process.pid, signal.SIGKILL)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                for job in self._batch.list_job_for_all_namespaces(label_selector=MANAGED).items:
                    with self._lock:
                        self._step(self._sanitize(job))
            except Exception as exc:  # the API server is down: a kubelet keeps its pods and retries
                log.warning("local kubelet: %s; retrying", exc)

    def _step(self, job: dict[str, Any]) -> None:
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        if steps := self._steps.get(key):  # the Job controller's writes, one per poll
            self._batch.patch_namespaced_job_status(key[1], key[0], {"status": steps[0]})
            steps.pop(0)
            if not steps:
                del self._steps[key]
            return
        if key in self._done:
            return
        attempt = self._running.get(key)
        if job["spec"].get("suspend"):
            if attempt is not None and attempt.process.poll() is None:
                os.killpg(attempt.process.pid, signal.SIGKILL)
                attempt.process.wait()
                self._core.delete_namespaced_pod(attempt.pod, key[0])
                del self._running[key]
            return
        if attempt is None:
            self._start(key, job)
            return
        code = attempt.process.poll()
        if code is not None:
            self._finished(key, job, attempt, code)  # raises while the API server is down: retried next time
            del self._running[key]

    def _start(self, key: tuple[str, str], job: dict[str, Any]) -> None:
        namespace, name = key
        number = self._attempts[key] = self._attempts.get(key, 0) + 1
        template = job["spec"]["template"]
        container = template["spec"]["containers"][0]
        pod = f"{name}-{number}"
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job["metadata"]["uid"],
                 "controller": True, "blockOwnerDeletion": True}
        created = self._core.create_namespaced_pod(namespace, {
            "metadata": {"name": pod, "labels": template["metadata"]["labels"], "ownerReferences": [owner]},
            "spec": {"containers": [{"name": container["name"], "image": container["image"]}]}})
        self._pod_uids[pod] = created.metadata.uid
        self._core.patch_namespaced_pod_status(pod, namespace, {"status": {
            "phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": container["name"], "image": container["image"], "ready": True,
                                   "restartCount": 0, "imageID": "", "state": {"running": {}}}]}})
        env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
        if self._fake:
            self._running[key] = _Attempt(pod, _FakeProcess(env, self._api))
            self.started.append(pod)
            return
        env["YOLO_TRAINER_OUTPUT_DIR"] = str(self._workdir / namespace / name)
        environ = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
        command = [sys.executable, *container["command"][1:]] if container["command"][0] == "python" else container["command"]
        log = (self._workdir / f"{pod}.log").open("wb")
        process = subprocess.Popen(command, env={**environ, **env, "KUBECONFIG": str(self._kubeconfig)},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._running[key] = _Attempt(pod, process)
        self.started.append(pod)
        active = {"status": {"active": 1, "startTime": job.get("status", {}).get("startTime") or utc_now()}}
        self._batch.patch_namespaced_job_status(name, namespace, active)

    def _finished(self, key: tuple[str, str], job: dict[str, Any], attempt: _Attempt, code: int) -> None:
        namespace = key[0]
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        conditions = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}] \
            if attempt.disrupted else []
        self._core.patch_namespaced_pod_status(attempt.pod, namespace, {"status": {
            "phase": "Succeeded" if code == 0 else "Failed", "conditions": conditions,
            "containerStatuses": [{"name": "trainer", "image": "", "ready": False, "restartCount": 0, "imageID": "",
                                   "state": {"terminated": terminated}}]}})
        uid = self._pod_uids.get(attempt.pod, attempt.pod)
        if code == 0:
            self._conclude(key, uid, "SuccessCriteriaMet", "Complete", "CompletionsReached")
            return
        if attempt.disrupted:  # podFailurePolicy Ignore: retried without counting against backoffLimit
            self._steps[key] = [{"active": 0}]
            return
        for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules", []):
            exits = rule.get("onExitCodes") or {}
            if rule.get("action") == "FailJob" and code in exits.get("values", []):
                self._conclude(key, uid, "FailureTarget", "Failed", "PodFailurePolicy")
                return
        self._failures[key] = self._failures.get(key, 0) + 1
        if self._failures[key] > int(job["spec"].get("backoffLimit", 6)):
            self._conclude(key, uid, "FailureTarget", "Failed", "BackoffLimitExceeded")
        else:
            self._steps[key] = [{"active": 0, "failed": self._failures[key]}]  # the next attempt follows

    def _conclude(self, key: tuple[str, str], pod_uid: str, intermediate: str, final: str, reason: str) -> None:
        """Queue the verdict as the real Job controller writes it: uncounted pod, intermediate condition, final."""
        counted = "succeeded" if final == "Complete" else "failed"
        total = 1 if final == "Complete" else self._failures.get(key, 0) + 1
        first = {"type": intermediate, "status": "True", "reason": reason, "lastTransitionTime": utc_now()}
        last: dict[str, Any] = {"conditions": [first, {"type": final, "status": "True", "reason": reason,
                                                      "lastTransitionTime": utc_now()}]}
        if final == "Complete":
            last["completionTime"] = utc_now()
        self._steps[key] = [{"active": 0, "uncountedTerminatedPods": {counted: [pod_uid]}},
                            {counted: total, "uncountedTerminatedPods": {counted: None}, "conditions": [first]},
                            last]
        self._done.add(key)
