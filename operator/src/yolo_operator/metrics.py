"""The operator's Prometheus metrics: trainings by phase and reason, GPUs held, reconcile latency, Job failures.

The training table is fed by an event handler on every YoloTraining (no extra API calls) and read at
scrape time. Served on ``YOLO_OPERATOR_METRICS_PORT`` (0: off) by prometheus-client's own small server,
beside kopf's liveness endpoint; a private registry keeps repeated in-process runs (tests) independent.
Every labelled counter starts at zero for each label it can take, so a healthy operator's panels show 0,
not "No data"; the process's own memory, CPU, file descriptors and start time are exported too.
"""

import threading
import time
from collections.abc import Iterator
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
