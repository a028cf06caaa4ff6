"""``yoloctl list``'s two renderings of ``GET /tasks`` rows: a table for a terminal, tab-separated lines when
piped. mAP50 is labelled with which it is: the last epoch's, or best.pt's final value once a training succeeded.
The same two renderings of ``GET /sweeps`` rows and of a sweep's trials serve ``yoloctl sweep list`` and ``watch``."""

from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text


def map50_of(item: dict[str, Any]) -> tuple[float | None, float | None]:
    """A ``/tasks`` row's mAP50 of the last epoch and, once it succeeded, of best.pt (its final metrics)."""
    final = item.get("final_metrics") or {}
    return item.get("mAP50"), final.get("mAP50")


def _number(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _created(value: str) -> str:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def tsv_rows(items: list[dict[str, Any]]) -> list[str]:
    """``yoloctl list`` when piped: a header line, then one tab-separated line per training, nothing cut."""
    lines = ["\t".join(("task_id", "name", "state", "stage", "epoch", "total_epochs", "progress",
                         "mAP50_last_epoch", "mAP50_best_pt", "created_at"))]
    for item in items:
        last, best = map50_of(item)
        fields = (item["task_id"], item["name"], item.get("state") or item["status"], item.get("stage") or "",
                  str(item["current_epoch"]), str(item.get("total_epochs") or ""), f"{item['progress']:.1f}",
                  _number(last, 4), _number(best, 4), item["created_at"])
        lines.append("\t".join(field.replace("\t", " ").replace("\n", " ") for field in fields))
    return lines


def task_table(items: list[dict[str, Any]], *, wide: bool) -> Table:
    """``yoloctl list`` in a terminal. Narrow (80 columns): id, state, epoch, mAP50 and the name; wide: stage,
    progress and creation time too. Every column but the name is as wide as its longest cell, so only a long
    name is shortened (with an ellipsis). Cells are plain text, never markup."""
    names = ["task id", "state", "epoch", "mAP50"] + (["stage", "progress", "created"] if wide else [])
    rows = []
    for item in items:
        last, best = map50_of(item)
        map50 = f"{best:.3f} best" if best is not None else f"{last:.3f} last" if last is not None else ""
        cells = [item["task_id"], item.get("state") or item["status"],
                 f"{item['current_epoch']}/{item.get('total_epochs') or '?'}", map50]
        if wide:
            cells += [item.get("stage") or "", f"{item['progress']:.1f}%", _created(item["created_at"])]
        rows.append([*cells, item["name"]])
    table = Table(box=None, pad_edge=False, header_style="bold")
    for index, name in enumerate(names):
        table.add_column(name, no_wrap=True, width=max([len(name), *(len(row[index]) for row in rows)]))
    table.add_column("name", overflow="ellipsis", min_width=4)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def _clean(cells: tuple[str, ...]) -> str:
    return "\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in cells)


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else "" if value is None else str(value)


def sweep_tsv(items: list[dict[str, Any]]) -> list[str]:
    """``yoloctl sweep list`` when piped: a header line, then one tab-separated line per sweep."""
    lines = [_clean(("sweep_id", "name", "namespace", "state", "done", "running", "best_objective", "best_trial",
                     "metric", "algorithm", "created_at"))]
    for item in items:
        best = item.get("best") or {}
        lines.append(_clean((item["sweep_id"], item["name"], item.get("namespace") or "", item["state"],
                             item.get("done") or "", _value((item.get("counts") or {}).get("running")),
                             _value(best.get("objective")), best.get("name") or "",
                             (item.get("objective") or {}).get("metric") or "", item.get("algorithm") or "",
                             item["created_at"])))
    return lines


def sweep_table(items: list[dict[str, Any]]) -> Table:
    """``yoloctl sweep list`` in a terminal: id, state, trials done, best objective and trial, algorithm, name."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("sweep id", "state", "done", "best", "algorithm"):
        table.add_column(name, no_wrap=True)
    table.add_column("name", overflow="ellipsis", min_width=4)
    for item in items:
        best = item.get("best") or {}
        metric = (item.get("objective") or {}).get("metric") or ""
        shown = f"{best['objective']:.4f} {metric} ({best.get('name')})" if best.get("objective") is not None else ""
        table.add_row(*(Text(cell) for cell in (item["sweep_id"], item["state"], item.get("done") or "", shown,
                                                item.get("algorithm") or "", item["name"])))
    return table


def trial_tsv(trials: list[dict[str, Any]], parameters: list[str]) -> list[str]:
    """A sweep's trials when piped (best first): number, name, state, objective, epoch, each parameter, task id."""
    lines = [_clean(("trial", "name", "state", "objective", "epoch", *parameters, "task_id", "reason"))]
    for row in trials:
        values = row.get("parameters") or {}
        lines.append(_clean((str(row["trial"]), row["name"], row["state"], _value(row.get("objective")),
                             _value(row.get("epoch")), *(_value(values.get(p)) for p in parameters),
                             row.get("task_id") or "", row.get("reason") or "")))
    return lines


def trial_table(trials: list[dict[str, Any]], parameters: list[str], metric: str) -> Table:
    """A sweep's trials in a terminal, sorted by objective as the API sorts them (best first)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("#", "trial", "state", metric or "objective", "epoch", *parameters):
        table.add_column(name, no_wrap=True)
    for row in trials:
        values = row.get("parameters") or {}
        objective = row.get("objective")
        table.add_row(*(Text(cell) for cell in (
            str(row["trial"]), row["name"], row["state"], "" if objective is None else f"{objective:.4f}",
            _value(row.get("epoch")), *(_value(values.get(p)) for p in parameters))))
    return table
