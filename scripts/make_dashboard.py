"""Write the chart's Grafana dashboard (deploy/helm/.../dashboards/yolo-training.json) from this table.

Kept as code so that panels stay uniform; the JSON is committed and tests check every metric it names
exists. Run: ``python scripts/make_dashboard.py``.
"""

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "deploy/helm/yolo-training-operator/dashboards/yolo-training.json"
# Per-training series come from every API replica: max() folds the replicas into one line. Trainings are
# keyed by task_id (two trainings may share a name, one after the other); namespace and name ride along.
WHO = 'namespace=~"$namespace"'
BY = "max by (namespace, name, task_id)"
LEGEND = "{{namespace}}/{{name}} ({{task_id}})"
PANELS: list[tuple[str, str, list[tuple[str, str]], dict[str, Any]]] = [
    ("Trainings by phase", "stat", [("sum by (phase) (yolo_operator_trainings)", "{{phase}}")], {}),
    ("GPUs held by running trainings", "stat",
     [('sum(yolo_operator_gpus_requested{phase="Running"})', "GPUs")], {}),
    ("Progress", "bargauge", [(f"{BY} (yolo_training_progress_percent{{{WHO}}})", LEGEND)],
     {"unit": "percent", "max": 100}),
    ("ETA (running trainings)", "bargauge", [(f"{BY} (yolo_training_eta_seconds{{{WHO}}})", LEGEND)], {"unit": "s"}),
    ("mAP50", "timeseries", [(f"{BY} (yolo_training_map50{{{WHO}}})", LEGEND)], {"max": 1, "min": 0}),
    ("mAP50-95", "timeseries", [(f"{BY} (yolo_training_map50_95{{{WHO}}})", LEGEND)], {"max": 1, "min": 0}),
    ("Training losses", "timeseries", [
        (f"{BY} (yolo_training_{loss}_loss{{{WHO}}})", f"{{{{namespace}}}}/{{{{name}}}} ({{{{task_id}}}}) {loss}")
        for loss in ("box", "cls", "dfl")], {}),
    ("Trainings by state (current and recently ended)", "table",
     [(f"max by (namespace, name, task_id, state, stage) (yolo_training_info{{{WHO}}})", LEGEND)], {}),
    ("Trainings known to the API", "timeseries", [("max by (state) (yolo_trainings)", "{{state}}")], {}),
    ("Operator reconcile latency", "timeseries", [
        (f"histogram_quantile({q}, sum by (le, handler) (rate(yolo_operator_reconcile_duration_seconds_bucket[5m])))",
         f"p{int(q * 100)} {{{{handler}}}}") for q in (0.5, 0.99)], {"unit": "s"}),
    ("Job creation failures (1h)", "stat",
     [("sum by (reason) (increase(yolo_operator_job_creation_failures_total[1h]))", "{{reason}}")], {}),
    ("Operator sync errors", "timeseries",
     [("sum by (handler) (rate(yolo_operator_sync_errors_total[5m]))", "{{handler}}")], {}),
    ("API latency (requests; streams apart)", "timeseries", [
        (f"histogram_quantile({q}, sum by (le, route) (rate(yolo_api_request_duration_seconds_bucket[5m])))",
         f"p{int(q * 100)} {{{{route}}}}") for q in (0.5, 0.99)], {"unit": "s"}),
    ("API requests", "timeseries",
     [("sum by (route, status) (rate(yolo_api_requests_total[5m]))", "{{route}} {{status}}")], {"unit": "reqps"}),
    ("API event streams open", "timeseries", [("sum(yolo_api_streams_open)", "streams")], {}),
    ("API watch reconnects", "timeseries", [("sum(rate(yolo_api_watch_reconnects_total[5m]))", "reconnects/s")], {}),
    ("Process memory", "timeseries", [('max by (job) (process_resident_memory_bytes{job=~".*yolo.*"})', "{{job}}")],
     {"unit": "bytes"}),
]


def panel(index: int, title: str, kind: str, targets: list[tuple[str, str]],
          defaults: dict[str, Any]) -> dict[str, Any]:
    """One panel, laid out two per row."""
    return {
        "id": index + 1, "title": title, "type": kind, "datasource": {"type": "prometheus", "uid": "$datasource"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard() -> dict[str, Any]:
    """The whole dashboard."""
    return {
        "title": "YOLO trainings", "uid": "yolo-trainings", "schemaVersion": 39, "version": 1,
        "tags": ["yolo", "training"], "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "namespace", "type": "query", "label": "Namespace", "includeAll": True, "multi": True,
             "datasource": {"type": "prometheus", "uid": "$datasource"}, "allValue": ".*",
             "query": "label_values(yolo_training_progress_percent, namespace)", "refresh": 2},
        ]},
        "panels": [panel(i, *row) for i, row in enumerate(PANELS)],
    }


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {OUT}")
