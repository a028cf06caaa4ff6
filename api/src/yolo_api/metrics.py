"""Prometheus metrics of the API: requests by route and status, the index, and every training's progress.

Request metrics are kept by a pure ASGI middleware with the labelled children cached, so a poll costs two
lock-protected additions and no per-request allocation of label sets (an ``@app.middleware("http")``
function cut ``/task_status`` throughput to about a third). Per-training series are computed when
Prometheus scrapes, from the same records ``/task_status`` answers from: no work between scrapes, and no
exporter inside the trainer pod.
"""

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yolo_api.backends import TaskBackend
from yolo_crd.envelope import TaskState
from yolo_crd.status import eta_seconds

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

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
    ("eta_seconds", "Estimated seconds left", eta_seconds),
)


class TrainingCollector(Collector):
    """Scrape-time gauges: trainings by state, the index, watch health, and each running training's figures."""

    def __init__(self, backend: TaskBackend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        """Read every record once; finished trainings keep their final figures until they are deleted."""
        records, _ = self.backend.list(0, 1_000_000)
        by_state = GaugeMetricFamily("yolo_trainings", "Trainings known to the API, by state", labels=["state"])
        counts = dict.fromkeys((state.value for state in TaskState), 0)
        for record in records:
            counts[record.state().value] += 1
        for state, count in counts.items():
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily("yolo_api_index_size", "Trainings held in the API's index", value=len(records))
        for attribute, help_text in (("reconnects", "Watch connections that broke and were resumed"),
                                     ("relists", "Full relists (first list, or after 410 Gone)")):
            value = getattr(self.backend, attribute, None)
            if value is None:
                value = getattr(getattr(self.backend, "index", None), attribute, None)
            if value is not None:
                yield GaugeMetricFamily(f"yolo_api_watch_{attribute}", help_text, value=value)
        labels = ["namespace", "name", "task_id"]
        families = [(GaugeMetricFamily(f"yolo_training_{suffix}", text, labels=labels), read)
                    for suffix, text, read in TRAINING_SERIES]
        for record in records:
            if record.status is None:
                continue
            values = [record.namespace or "", record.name, record.task_id]
            for family, read in families:
                value = read(record.status)
                if value is not None:
                    family.add_metric(values, float(value))
        yield from (family for family, _ in families)


class RequestMetrics:
    """Pure ASGI middleware: count and time requests by route template, method and status code."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("yolo_api_requests", "HTTP requests answered", ["route", "method", "status"],
                                registry=registry)
        self.latency = Histogram("yolo_api_request_duration_seconds", "Time to answer, by route",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the whole exchange; the route template comes from FastAPI's match (``scope["route"]``)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
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
            children[1].observe(time.perf_counter() - started)
