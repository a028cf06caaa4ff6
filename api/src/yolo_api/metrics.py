"""Prometheus metrics of the API: requests by route and status, streams, the index, and every training's figures.

Request metrics are kept by a pure ASGI middleware with the labelled children cached, so a poll costs two
lock-protected additions and no per-request allocation of label sets (an ``@app.middleware("http")``
function cut ``/task_status`` throughput to about a third). Event streams (text/event-stream answers live
for minutes) are timed apart from request latency, which they would otherwise pin at the top bucket.

Per-training series are computed when Prometheus scrapes, from the same records ``/task_status`` answers
from: no work between scrapes, and no exporter inside the trainer pod. They exist while a training is
unfinished and for ``metrics_retention_seconds`` after it ends (so its last values are scraped), then go:
cardinality follows the trainings that matter now, not every training ever run. ``yolo_training_info``
carries the state, so dashboards can tell running from failed; the ETA exists only while training runs.
Sweeps follow the same rule: each sweep's trials by state and its best objective, while it runs and for the
same retention after it ends, from the records ``GET /sweeps`` answers from (a backend without sweeps has none).
"""

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yolo_api.backends import TaskBackend, TaskRecord
from yolo_crd.envelope import TaskState
from yolo_crd.status import eta_seconds

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
STREAM_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)

#: (metric suffix, help, how to read it from a status) for the per-training gauges.
TRAINING_SERIES: tuple[tuple[str, str, Any], ...] = (
    ("epoch", "Last finished epoch", lambda s: s.current_epoch),
    ("total_epochs", "Epochs planned", lambda s: s.total_epochs),
    ("progress_percent", "Percent of epochs done", lambda s: s.progress),
    ("map50", "mAP50 of the last validated epoch", lambda s: s.metrics and s.metrics.map50),
    ("map50_95", "mAP50-95 of the last validated epoch", lambda s: s.metrics and s.metrics.map50_95),
    ("precision", "Precision of the last validated epoch", lambda s: s.metrics and s.metrics.precision),
    ("recall", "Recall of the last validated epoch", lambda s: s.metrics and s.metrics.recall),
    ("box_loss", "Training box loss of the last epoch", lambda s: s.metrics and s.metrics.train_box_loss),
    ("cls_loss", "Training class loss of the last epoch", lambda s: s.metrics and s.metrics.train_cls_loss),
    ("dfl_loss", "Training DFL loss of the last epoch", lambda s: s.metrics and s.metrics.train_dfl_loss),
)
LABELS = ["namespace", "name", "task_id"]
SWEEP_LABELS = ["namespace", "name", "sweep_id"]
#: The trial states of ``yolo_sweep_trials`` (the keys of a sweep status's ``counts``), each exported, 0 included.
SWEEP_TRIAL_STATES = ("pending", "running", "succeeded", "failed", "earlyStopped")


def _ended_ago(record: TaskRecord, now: dt.datetime) -> float | None:
    """Seconds since a finished training ended (None while it is unfinished)."""
    if record.state() not in (TaskState.SUCCESS, TaskState.FAILURE):
        return None
    ended = record.status.completion_time if record.status else None
    try:
        return (now - dt.datetime.fromisoformat(ended)).total_seconds() if ended else 0.0
    except ValueError:
        return 0.0


class TrainingCollector(Collector):
    """Scrape-time series: trainings by state, the index, watch health, and each current training's figures."""

    def __init__(self, backend: TaskBackend, retention_seconds: float = 900.0) -> None:
        self.backend = backend
        self.retention = retention_seconds

    def collect(self) -> Iterator[Metric]:
        """Read every record once; a finished training's series go after the retention period."""
        records, _ = self.backend.list(0, 1_000_000)
        by_state = GaugeMetricFamily("yolo_trainings", "Trainings known to the API, by state", labels=["state"])
        counts = dict.fromkeys((state.value for state in TaskState), 0)
        for record in records:
            counts[record.state().value] += 1
        for state, count in counts.items():
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily("yolo_api_index_size", "Trainings held in the API's index", value=len(records))
        yield from self._watch_counters()
        yield from self._trainings(records)
        yield from self._sweeps()

    def _watch_counters(self) -> Iterator[Metric]:
        for attribute, help_text in (("reconnects", "Watch connections that broke and were resumed"),
                                     ("relists", "Full relists (first list, or after 410 Gone)")):
            value = getattr(self.backend, attribute, None)
            if value is None:
                value = getattr(getattr(self.backend, "index", None), attribute, None)
            if value is not None:
                yield CounterMetricFamily(f"yolo_api_watch_{attribute}", help_text, value=value)

    def _trainings(self, records: list[TaskRecord]) -> Iterator[Metric]:
        now = dt.datetime.now(dt.UTC)
        info = GaugeMetricFamily("yolo_training_info", "1 for each training exported; its state and stage",
                                 labels=[*LABELS, "state", "stage"])
        families = [(GaugeMetricFamily(f"yolo_training_{suffix}", text, labels=LABELS), read)
                    for suffix, text, read in TRAINING_SERIES]
        eta = GaugeMetricFamily("yolo_training_eta_seconds", "Estimated seconds left (only while training runs)",
                                labels=LABELS)
        for record in records:
            ago = _ended_ago(record, now)
            if ago is not None and ago > self.retention:
                continue
            values = [record.namespace or "", record.name, record.task_id]
            status = record.status
            stage = status.stage.value if status is not None and status.stage is not None else ""
            info.add_metric([*values, record.display_state(), stage], 1)
            if status is None:
                continue
            for family, read in families:
                value = read(status)
                if value is not None:
                    family.add_metric(values, float(value))
            remaining = eta_seconds(status, now) if record.state() is TaskState.PROGRESS else None
            if remaining is not None:
                eta.add_metric(values, remaining)
        yield info
        yield from (family for family, _ in families)
        yield eta


    def _sweeps(self) -> Iterator[Metric]:
        list_sweeps = getattr(self.backend, "list_sweeps", None)
        if list_sweeps is None:
            return
        now = dt.datetime.now(dt.UTC)
        info = GaugeMetricFamily("yolo_sweep_info", "1 for each sweep exported; its state",
                                 labels=[*SWEEP_LABELS, "state"])
        trials = GaugeMetricFamily("yolo_sweep_trials", "A sweep's trials by state", labels=[*SWEEP_LABELS, "state"])
        best = GaugeMetricFamily("yolo_sweep_best_objective", "The final objective of a sweep's best succeeded trial",
                                 labels=[*SWEEP_LABELS, "metric"])
        for sweep in list_sweeps():
            if sweep.final() and _ago(sweep.status.completion_time, now) > self.retention:
                continue
            values = [sweep.namespace or "", sweep.name, sweep.sweep_id]
            info.add_metric([*values, sweep.state()], 1)
            counts = sweep.status.counts.wire() if sweep.status.counts else {}
            for state in SWEEP_TRIAL_STATES:
                trials.add_metric([*values, state], float(counts.get(state) or 0))
            if sweep.status.best is not None:
                metric = str((sweep.spec.get("objective") or {}).get("metric") or "")
                best.add_metric([*values, metric], sweep.status.best.objective)
        yield info
        yield trials
        yield best


def _ago(stamp: str | None, now: dt.datetime) -> float:
    """Seconds since an RFC 3339 time (0 when absent or unreadable: the series stay until it is known)."""
    try:
        return (now - dt.datetime.fromisoformat(stamp)).total_seconds() if stamp else 0.0
    except ValueError:
        return 0.0


def register_process_collectors(registry: CollectorRegistry) -> None:
    """The process's memory, CPU, file descriptors and start time, the platform and the garbage collector."""
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)


class RequestMetrics:
    """Pure ASGI middleware: count and time requests by route template, method and status code."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("yolo_api_requests", "HTTP requests answered", ["route", "method", "status"],
                                registry=registry)
        self.latency = Histogram("yolo_api_request_duration_seconds", "Time to answer, by route (streams excluded)",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self.streams = Histogram("yolo_api_stream_duration_seconds", "How long event streams stayed open, by route",
                                 ["route"], buckets=STREAM_BUCKETS, registry=registry)
        self.open_streams = Gauge("yolo_api_streams_open", "Event streams open now", registry=registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the whole exchange; the route template comes from FastAPI's match (``scope["route"]``)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        stream = False

        async def sending(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                stream = any(name == b"content-type" and value.startswith(b"text/event-stream")
                             for name, value in message.get("headers") or [])
                if stream:
                    self.open_streams.inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            key = (route, scope["method"], status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (self.requests.labels(route, scope["method"], str(status)),
                                                  self.latency.labels(route, scope["method"]))
            children[0].inc()
            if stream:
                self.open_streams.dec()
                self.streams.labels(route).observe(time.perf_counter() - started)
            else:
                children[1].observe(time.perf_counter() - started)
