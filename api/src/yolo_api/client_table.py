"""``yoloctl list``'s two renderings of ``GET /tasks`` rows: a table for a terminal, tab-separated lines when
piped. mAP50 is labelled with which it is: the last epoch's, or best.pt's final value once a training succeeded."""

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
