"""Stand-ins for the Job controller and the scheduler, for API servers that run none (the emulator, a bare
control plane). On a real cluster kube-controller-manager and kube-scheduler do this; ``tests/kubelet.py``
plays only the node.

:class:`JobControllerStandIn` behaves as kube-controller-manager's Job controller (1.31+) does for our
Jobs (parallelism 1):

* an unsuspended, unfinished Job without a live pod gets one, made from its template (labels
  ``batch.kubernetes.io/controller-uid`` and ``job-name``, owned by the Job, with the
  ``batch.kubernetes.io/job-tracking`` finalizer that keeps an ended pod until it is counted);
  ``status.active`` (live pods, Pending ones included) and ``startTime`` follow, and ``status.ready``
  counts the live pods whose Ready condition is True;
* a pod the API server refuses (a ResourceQuota exceeded, say) is not counted: the Job keeps ``active``
  at 0 (with its ``startTime``), a Warning Event ``FailedCreate`` ("Error creating: <the API's message>",
  source ``job-controller``) is recorded on the Job, aggregated into one Event with a growing ``count``
  as client-go's recorder does, and the creation is retried with the controller's exponential backoff
  (1 s doubling to 60 s); pods are made with ``generateName: <job>-`` as the real controller makes them;
* a suspended Job's live pods are deleted (gracefully: the node stops them);
* an ended pod is counted once, then its finalizer is removed: Succeeded ends the Job; Failed is matched
  against ``podFailurePolicy`` (``Ignore`` on DisruptionTarget: not counted, replaced; ``FailJob`` on the
  listed exit codes), else it counts toward ``backoffLimit`` and is replaced until the limit is passed;
* ``activeDeadlineSeconds`` past: live pods are deleted and the Job fails with DeadlineExceeded;
* a verdict is written in steps that watchers see one by one, a poll apart: the pod in
  ``uncountedTerminatedPods`` with ``active: 0``, then the counts and ``SuccessCriteriaMet`` or
  ``FailureTarget`` (with its reason), then ``Complete`` or ``Failed``.

Not emulated: parallelism and completions above 1, the backoff delay between retries, indexed Jobs.

:class:`SchedulerStandIn` binds each of our unscheduled pods to a Ready node through the ``binding``
subresource, as kube-scheduler does: only to a node whose labels match the pod's ``nodeSelector`` and
whose NoSchedule/NoExecute taints the pod tolerates; when none fits, the pod gets ``PodScheduled=False``
with reason Unschedulable. No resource fitting (our test nodes are big enough) and no affinity.
:class:`QuotaControllerStandIn` writes ResourceQuota status (``hard``, ``used``), without which admission
refuses every pod. :class:`ControlPlane` runs the three in a thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from typing import Any

from kubernetes import client

from yolo_crd.status import utc_now

MANAGED = "app.kubernetes.io/managed-by=yolo-training-operator"
TRACKING = "batch.kubernetes.io/job-tracking"
log = logging.getLogger(__name__)


def _condition(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def _exit_code(pod: dict[str, Any]) -> int | None:
    for state in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (state.get("state") or {}).get("terminated")
        if terminated:
            return int(terminated.get("exitCode", 1))
    return None


class JobControllerStandIn:
    """See the module docstring. Call :meth:`step` from a poll loop (``tests/kubelet.py`` does)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._sanitize = api.sanitize_for_serialization
        self._failures: dict[str, int] = {}  # by Job uid
        self._counted: set[str] = set()  # pod uids
        self._steps: dict[str, list[dict[str, Any]]] = {}  # by Job uid: status writes still to come
        self._retry: dict[str, tuple[float, float]] = {}  # by Job uid: (next creation attempt, backoff)
        self._recorded: dict[tuple[str, str], tuple[str, int]] = {}  # (Job uid, message): (Event name, count)

    def step(self) -> None:
        """One pass over every Job of ours and its pods."""
        jobs = [self._sanitize(j) for j in self._batch.list_job_for_all_namespaces(label_selector=MANAGED).items]
        pods = [self._sanitize(p) for p in self._core.list_pod_for_all_namespaces(label_selector=MANAGED).items]
        uids = {job["metadata"]["uid"] for job in jobs}
        for pod in pods:  # pods of a Job that is gone: the real controller lets go of them
            owner = (pod.get("metadata", {}).get("labels") or {}).get("batch.kubernetes.io/controller-uid")
            if owner not in uids:
                self._release(pod)
        for job in jobs:
            mine = [p for p in pods if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid")
                    == job["metadata"]["uid"]]
            self._job(job, mine)

    def _patch(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        self._batch.patch_namespaced_job_status(job["metadata"]["name"], job["metadata"]["namespace"],
                                                {"status": status})

    def _job(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        uid = job["metadata"]["uid"]
        if steps := self._steps.get(uid):
            self._patch(job, steps.pop(0))
            if not steps:
                del self._steps[uid]
            return
        if _condition(job, "Complete") or _condition(job, "Failed"):
            return
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") or \
                    pod["metadata"]["uid"] in self._counted:
                continue
            if job["spec"].get("suspend") and pod["metadata"].get("deletionTimestamp"):
                self._counted.add(pod["metadata"]["uid"])  # stopped for the suspension: not a failure
                self._release(pod)
                continue
            self._count(job, pod)
            return
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]
        spec, status = job["spec"], job.get("status") or {}
        deadline = spec.get("activeDeadlineSeconds")
        started = status.get("startTime")
        if deadline and started and dt.datetime.fromisoformat(started) + dt.timedelta(seconds=deadline) \
                < dt.datetime.now(dt.UTC):
            self._delete(live)
            self._conclude(job, None, "FailureTarget", "Failed", "DeadlineExceeded")
        elif spec.get("suspend"):
            self._delete(live)
            if status.get("active"):
                self._patch(job, {"active": 0})
        elif not live:
            if time.monotonic() < self._retry.get(uid, (0.0, 0.0))[0]:
                return
            if self._create_pod(job):
                self._patch(job, {"active": 1, "ready": 0, "startTime": started or utc_now()})
            elif not started:
                self._patch(job, {"startTime": utc_now()})
        elif (ready := sum(_condition(p, "Ready") for p in live)) != status.get("ready", 0):
            self._patch(job, {"ready": ready})

    def _count(self, job: dict[str, Any], pod: dict[str, Any]) -> None:
        uid, pod_uid = job["metadata"]["uid"], pod["metadata"]["uid"]
        self._counted.add(pod_uid)
        self._release(pod)
        if pod["status"]["phase"] == "Succeeded":
            self._conclude(job, pod_uid, "SuccessCriteriaMet", "Complete", "CompletionsReached")
            return
        code = _exit_code(pod)
        for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules", []):
            on_conditions = [c.get("type") for c in rule.get("onPodConditions") or []]
            if rule.get("action") == "Ignore" and any(_condition(pod, kind) for kind in on_conditions):
                self._patch(job, {"active": 0})  # not counted: a replacement follows
                return
            if rule.get("action") == "FailJob" and code in (rule.get("onExitCodes") or {}).get("values", []):
                self._conclude(job, pod_uid, "FailureTarget", "Failed", "PodFailurePolicy")
                return
        self._failures[uid] = self._failures.get(uid, 0) + 1
        if self._failures[uid] > int(job["spec"].get("backoffLimit", 6)):
            self._conclude(job, pod_uid, "FailureTarget", "Failed", "BackoffLimitExceeded")
        else:
            self._patch(job, {"active": 0, "failed": self._failures[uid]})

    def _conclude(self, job: dict[str, Any], pod_uid: str | None, intermediate: str, final: str, reason: str) -> None:
        """Queue the verdict as the real Job controller writes it: uncounted pod, intermediate condition, final."""
        counted = "succeeded" if final == "Complete" else "failed"
        total = 1 if final == "Complete" else self._failures.get(job["metadata"]["uid"], 0) + 1
        first = {"type": intermediate, "status": "True", "reason": reason, "lastTransitionTime": utc_now()}
        last: dict[str, Any] = {"conditions": [first, {"type": final, "status": "True", "reason": reason,
                                                      "lastTransitionTime": utc_now()}]}
        if final == "Complete":
            last["completionTime"] = utc_now()
        steps: list[dict[str, Any]] = [{"active": 0, "uncountedTerminatedPods": {counted: [pod_uid]}}] if pod_uid else []
        steps += [{counted: total, "uncountedTerminatedPods": {counted: None}, "conditions": [first]}, last]
        self._steps[job["metadata"]["uid"]] = steps

    def _create_pod(self, job: dict[str, Any]) -> bool:
        """Make the Job's pod; False (with a FailedCreate Event and a backoff) when the API server refuses it."""
        meta, template = job["metadata"], job["spec"]["template"]
        labels = {**(template.get("metadata") or {}).get("labels", {}),
                  "batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": meta["name"],
                  "job-name": meta["name"]}
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"], "controller": True,
                 "blockOwnerDeletion": True}
        try:
            self._core.create_namespaced_pod(meta["namespace"], {
                "metadata": {"generateName": f"{meta['name']}-", "labels": labels, "ownerReferences": [owner],
                             "finalizers": [TRACKING]},
                "spec": template["spec"]})
        except client.ApiException as exc:
            try:
                detail = json.loads(exc.body or "{}").get("message") or exc.reason
            except ValueError:
                detail = exc.reason
            self._record_failed_create(job, f"Error creating: {detail}")
            backoff = min(60.0, 2 * self._retry.get(meta["uid"], (0.0, 0.5))[1])
            self._retry[meta["uid"]] = (time.monotonic() + backoff, backoff)
            return False
        self._retry.pop(meta["uid"], None)
        return True

    def _record_failed_create(self, job: dict[str, Any], message: str) -> None:
        """A Warning Event on the Job, as client-go's recorder writes it: one Event per message, counted."""
        meta, now = job["metadata"], utc_now()
        key = (meta["uid"], message)
        if key in self._recorded:
            name, count = self._recorded[key]
            self._core.patch_namespaced_event(name, meta["namespace"], {"count": count + 1, "lastTimestamp": now})
            self._recorded[key] = (name, count + 1)
            return
        event = self._core.create_namespaced_event(meta["namespace"], {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": "FailedCreate", "message": message, "type": "Warning", "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "job-controller"},
            "reportingComponent": "job-controller", "reportingInstance": ""})
        self._recorded[key] = (event.metadata.name, 1)

    def _delete(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            try:
                self._core.delete_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"])
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

    def _release(self, pod: dict[str, Any]) -> None:
        if TRACKING in (pod["metadata"].get("finalizers") or []):
            finalizers = [f for f in pod["metadata"]["finalizers"] if f != TRACKING]
            try:
                self._core.patch_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                                {"metadata": {"finalizers": finalizers or None}})
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


class SchedulerStandIn:
    """Binds our unscheduled pods to a Ready node (see the module docstring)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def step(self) -> None:
        """Bind every pending pod of ours that has no node yet to a node it fits, or say why none fits."""
        nodes = self._core.list_node().items
        ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))]
        if not ready:
            return
        for pod in self._core.list_pod_for_all_namespaces(label_selector=MANAGED).items:
            if pod.spec.node_name or pod.metadata.deletion_timestamp:
                continue
            fitting = [n.metadata.name for n in ready if _fits(pod, n)]
            if not fitting:
                self._unschedulable(pod, len(nodes))
                continue
            self._core.create_namespaced_pod_binding(pod.metadata.name, pod.metadata.namespace, {
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod.metadata.name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": random.choice(fitting)}},
                _preload_content=False)

    def _unschedulable(self, pod: Any, total: int) -> None:
        if any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in ((pod.status and pod.status.conditions) or [])):
            return
        message = f"0/{total} nodes are available: no node matches the pod's node selector or tolerates its taints."
        self._core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": {
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": message, "lastTransitionTime": utc_now()}]}})


def _fits(pod: Any, node: Any) -> bool:
    """The pod's nodeSelector matches the node's labels and it tolerates the node's NoSchedule taints."""
    labels = node.metadata.labels or {}
    if any(labels.get(key) != value for key, value in (pod.spec.node_selector or {}).items()):
        return False
    tolerations = pod.spec.tolerations or []
    for taint in node.spec.taints or []:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue
        if not any((t.effect in (None, "", taint.effect)) and (t.key in (None, "") or t.key == taint.key)
                   and (t.operator == "Exists" or t.value == taint.value) for t in tolerations):
            return False
    return True


class QuotaControllerStandIn:
    """Writes each ResourceQuota's status as kube-controller-manager's quota controller does: ``hard`` from
    the spec and ``used`` by the namespace's pods that have not ended. Until it has, admission refuses
    every pod with "status unknown for quota" (tests/emulator_rules.py, as kube-apiserver)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)
        self._sanitize = api.sanitize_for_serialization

    def step(self) -> None:
        """Bring every quota's status up to date."""
        from emulator_rules import pod_usage

        for quota in [self._sanitize(q) for q in self._core.list_resource_quota_for_all_namespaces().items]:
            meta, hard = quota["metadata"], (quota.get("spec") or {}).get("hard") or {}
            pods = [self._sanitize(p) for p in self._core.list_namespaced_pod(meta["namespace"]).items
                    if (p.status.phase if p.status else None) not in ("Succeeded", "Failed")]
            used = {key: str(int(sum(pod_usage(p, key) for p in pods))) for key in hard}
            if (quota.get("status") or {}) != {"hard": hard, "used": used}:
                self._core.patch_namespaced_resource_quota_status(meta["name"], meta["namespace"],
                                                                  {"status": {"hard": hard, "used": used}})


class ControlPlane:
    """The Job controller, scheduler and quota controller stand-ins, polled in a thread of their own."""

    def __init__(self, api: client.ApiClient, poll: float = 0.2) -> None:
        self.jobs = JobControllerStandIn(api)
        self.scheduler = SchedulerStandIn(api)
        self.quotas = QuotaControllerStandIn(api)
        self._poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="control-plane", daemon=True)

    def __enter__(self) -> ControlPlane:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def step(self) -> None:
        """One pass of each controller."""
        self.quotas.step()
        self.jobs.step()
        self.scheduler.step()

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.step()
            except Exception as exc:  # the API server is down: controllers retry
                log.warning("control plane stand-in: %s; retrying", exc)
