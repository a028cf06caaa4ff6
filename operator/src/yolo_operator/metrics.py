"""The operator's Prometheus metrics: trainings by phase and reason, GPUs held, reconcile latency, Job failures,
and each sweep's trials by state and best objective.

The training table is fed by an event handler on every YoloTraining (no extra API calls) and read at
scrape time. The sweep table is set by the sweep controller from the status each step computes (no extra
API calls either); a sweep's series exist while it runs and for :data:`SWEEP_RETENTION_SECONDS` after it
ends, as the API keeps a training's (``YOLO_API_METRICS_RETENTION_SECONDS``, 900), and go at once when the
sweep is deleted. Served on ``YOLO_OPERATOR_METRICS_PORT`` (0: off) by prometheus-client's own small server,
beside kopf's liveness endpoint; a private registry keeps repeated in-process runs (tests) independent.
Every labelled counter starts at zero for each label it can take, so a healthy operator's panels show 0,
not "No data"; the process's own memory, CPU, file descriptors and start time are exported too.
"""

import datetime as dt
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)
HANDLERS = ("reconcile", "sync")
#: Why the API server refused a Job, from its status code (see :func:`failure_reason`).
FAILURE_REASONS = ("Forbidden", "Invalid", "TooManyRequests", "ServerError", "Unreachable", "Other")
RECONCILE_SECONDS = Histogram(
    "yolo_operator_reconcile_duration_seconds", "Time to handle one event of a training, by handler", ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY)
JOB_CREATE_FAILURES = Counter("yolo_operator_job_creation_failures", "Jobs the API server refused to create",
                              ["reason"], registry=REGISTRY)
SYNC_ERRORS = Counter("yolo_operator_sync_errors", "Status syncs that raised (they are retried)", ["handler"],
                      registry=REGISTRY)
for _handler in HANDLERS:
    RECONCILE_SECONDS.labels(_handler)
    SYNC_ERRORS.labels(_handler)
for _reason in FAILURE_REASONS:
    JOB_CREATE_FAILURES.labels(_reason)


def failure_reason(exc: BaseException) -> str:
    """One of :data:`FAILURE_REASONS` for an exception of a Kubernetes call."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        known = {403: "Forbidden", 422: "Invalid", 400: "Invalid", 429: "TooManyRequests"}
        return known.get(status, "ServerError" if status >= 500 else "Other")
    return "Unreachable" if isinstance(exc, OSError) or "urllib3" in type(exc).__module__ else "Other"


class TrainingTable(Collector):
    """(phase, reason, gpus) of every training this operator has seen, by (namespace, name)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, str, int]] = {}
        self._lock = threading.Lock()

    def observe(self, event_type: str, namespace: str, name: str, phase: str | None, reason: str | None,
                gpus: int) -> None:
        """Record one watch event of a training (DELETED removes it)."""
        with self._lock:
            if event_type == "DELETED":
                self._rows.pop((namespace, name), None)
            else:
                self._rows[(namespace, name)] = (phase or "New", reason or "", gpus)

    def clear(self) -> None:
        """Forget everything (at operator start)."""
        with self._lock:
            self._rows.clear()

    def collect(self) -> Iterator[Metric]:
        """Counts by phase and reason, and GPUs requested by phase."""
        with self._lock:
            rows = list(self._rows.values())
        trainings = GaugeMetricFamily("yolo_operator_trainings", "Trainings by phase and reason",
                                      labels=["phase", "reason"])
        gpus = GaugeMetricFamily("yolo_operator_gpus_requested", "GPUs requested by trainings, by phase",
                                 labels=["phase"])
        counts: dict[tuple[str, str], int] = {}
        gpu_totals: dict[str, int] = {}
        for phase, reason, gpu_count in rows:
            counts[(phase, reason)] = counts.get((phase, reason), 0) + 1
            gpu_totals[phase] = gpu_totals.get(phase, 0) + gpu_count
        for (phase, reason), count in sorted(counts.items()):
            trainings.add_metric([phase, reason], count)
        for phase, total in sorted(gpu_totals.items()):
            gpus.add_metric([phase], total)
        yield trainings
        yield gpus


TRAININGS = TrainingTable()
REGISTRY.register(TRAININGS)


#: Seconds a finished sweep's series are still exported (so its last values are scraped), then dropped.
SWEEP_RETENTION_SECONDS = 900.0
#: The trial states of ``yolo_operator_sweep_trials``, each exported (0 included) for every sweep; they are the
#: keys of the status's ``counts`` too.
SWEEP_TRIAL_STATES = ("pending", "running", "succeeded", "failed", "earlyStopped")


class SweepTable(Collector):
    """Each sweep's phase, trial counts and best objective, by (namespace, name), as its last step left them."""

    def __init__(self, retention_seconds: float = SWEEP_RETENTION_SECONDS) -> None:
        self.retention = retention_seconds
        #: (namespace, name) -> (phase, {state: count}, (metric, best objective) or None, ended at (epoch s) or None)
        self._rows: dict[tuple[str, str], tuple[str, dict[str, int], tuple[str, float] | None, float | None]] = {}
        self._lock = threading.Lock()

    def observe(self, namespace: str, name: str, status: Mapping[str, Any], metric: str) -> None:
        """Record a sweep's status (its wire form) after a step; ``metric`` is its objective's metric. A final
        sweep's end is its ``completionTime``, else the first time it was seen final."""
        phase = str(status.get("phase") or "Pending")
        counts = status.get("counts") or {}
        by_state = {state: int(counts.get(state) or 0) for state in SWEEP_TRIAL_STATES}
        objective = (status.get("best") or {}).get("objective")
        best = (metric, float(objective)) if objective is not None else None
        with self._lock:
            ended: float | None = None
            if phase in ("Succeeded", "Failed"):
                previous = self._rows.get((namespace, name))
                ended = _epoch_seconds(status.get("completionTime")) or (previous and previous[3]) or time.time()
            self._rows[(namespace, name)] = (phase, by_state, best, ended)

    def forget(self, namespace: str, name: str) -> None:
        """The sweep is gone (deleted): its series go now."""
        with self._lock:
            self._rows.pop((namespace, name), None)

    def clear(self) -> None:
        """Forget every sweep."""
        with self._lock:
            self._rows.clear()

    def collect(self) -> Iterator[Metric]:
        """Trials by state and the best objective of every current sweep; those past retention are dropped."""
        now = time.time()
        with self._lock:
            for key in [k for k, row in self._rows.items() if row[3] is not None and now - row[3] > self.retention]:
                del self._rows[key]
            rows = sorted(self._rows.items())
        info = GaugeMetricFamily("yolo_operator_sweep_info", "1 for each sweep exported; its phase",
                                 labels=["namespace", "sweep", "phase"])
        trials = GaugeMetricFamily("yolo_operator_sweep_trials", "A sweep's trials by state",
                                   labels=["namespace", "sweep", "state"])
        best = GaugeMetricFamily("yolo_operator_sweep_best_objective",
                                 "The objective of a sweep's best succeeded trial (its final value)",
                                 labels=["namespace", "sweep", "metric"])
        for (namespace, name), (phase, by_state, top, _ended) in rows:
            info.add_metric([namespace, name, phase], 1)
            for state in SWEEP_TRIAL_STATES:
                trials.add_metric([namespace, name, state], by_state[state])
            if top is not None:
                best.add_metric([namespace, name, top[0]], top[1])
        yield info
        yield trials
        yield best


def _epoch_seconds(stamp: Any) -> float | None:
    """An RFC 3339 time as seconds since the epoch (None when absent or unreadable)."""
    try:
        return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() if stamp else None
    except ValueError:
        return None


SWEEPS = SweepTable()
REGISTRY.register(SWEEPS)


@contextmanager
def timed(handler: str) -> Iterator[None]:
    """Observe a handler's duration, and count it as a sync error if it raises."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        SYNC_ERRORS.labels(handler).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(handler).observe(time.perf_counter() - started)


def serve(port: int) -> Any:
    """Start the metrics HTTP server on ``port``; returns the server (``shutdown()`` stops it)."""
    server, _thread = start_http_server(port, registry=REGISTRY)
    return server
