"""``yoloctl compare``'s two renderings of ``GET /tasks/compare``: a table for a terminal, tab-separated lines when
piped (as ``yoloctl list`` does).

One column per training, in the order asked; one row per figure: the state, the best epoch, best.pt's final
metrics, the quality gate, then every parameter the trainings were trained with. The parameters whose values
differ (the API's ``differing``) are marked: ``*`` and highlighted in the terminal, ``yes`` in the ``differs``
column when piped. In the terminal the best value of each metric is in bold.
"""

from typing import Any, Final

from rich.table import Table
from rich.text import Text

from yolo_api.client_http import EXIT_USAGE, CliError

MIN_TASKS: Final = 2
MAX_TASKS: Final = 6
METRICS: Final = ("mAP50", "mAP50-95", "precision", "recall", "f1_score")


def check_count(tasks: list[str]) -> None:
    """Exit code 2, before any request, for fewer than two or more than six trainings."""
    if not MIN_TASKS <= len(tasks) <= MAX_TASKS:
        raise CliError(f"compare takes {MIN_TASKS} to {MAX_TASKS} trainings, got {len(tasks)}", EXIT_USAGE)


def check_distinct(ids: list[str], given: list[str]) -> None:
    """Exit code 2 when two of the given ids (or unique starts) name the same training."""
    for index, task_id in enumerate(ids):
        if task_id in ids[:index]:
            raise CliError(f"{given[ids.index(task_id)]!r} and {given[index]!r} are the same training ({task_id}): "
                           "compare takes distinct trainings", EXIT_USAGE)


def shown(value: Any) -> str:
    """A parameter's value as one cell: lists joined by commas, mappings as ``key=value``, nothing for unset."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(shown(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={shown(item)}" for key, item in value.items())
    return str(value)


def _gate(task: dict[str, Any]) -> str:
    gate = task.get("quality_gate")
    return "" if not gate else "met" if gate.get("passed") else "not met"


def rows(data: dict[str, Any]) -> list[tuple[str, bool, list[str]]]:
    """(field, differs, one value per training) for every row of the table, in its order."""
    tasks: list[dict[str, Any]] = data["tasks"]
    table: list[tuple[str, bool, list[str]]] = [
        ("name", False, [str(task["name"]) for task in tasks]),
        ("state", False, [str(task["state"]) for task in tasks]),
        ("best_epoch", False, [shown(task.get("best_epoch")) for task in tasks]),
    ]
    for metric in METRICS:
        values = [(task.get("final_metrics") or {}).get(metric) for task in tasks]
        table.append((metric, False, ["" if value is None else f"{value:.4f}" for value in values]))
    table.append(("quality_gate", False, [_gate(task) for task in tasks]))
    differing = set(data.get("differing") or [])
    names = list(dict.fromkeys(name for task in tasks for name in task["params"]))
    table += [(name, name in differing, [shown(task["params"].get(name)) for task in tasks]) for name in names]
    return table


def _clean(cell: str) -> str:
    return cell.replace("\t", " ").replace("\n", " ")


def tsv_lines(data: dict[str, Any]) -> list[str]:
    """``yoloctl compare`` when piped: a header (``field``, ``differs``, then each full task id), one line per row."""
    lines = ["\t".join(["field", "differs", *(task["task_id"] for task in data["tasks"])])]
    for field, differs, values in rows(data):
        lines.append("\t".join(_clean(cell) for cell in [field, "yes" if differs else "", *values]))
    return lines


def compare_table(data: dict[str, Any]) -> Table:
    """``yoloctl compare`` in a terminal: a column per training headed by its short id and name, differing
    parameters marked ``*`` and highlighted, each metric's best value in bold (where the values differ). Cells
    are plain text, never markup; long values (paths) fold rather than lose characters."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("", no_wrap=True, width=1)
    table.add_column("", no_wrap=True, style="bold")
    for task in data["tasks"]:
        table.add_column(Text(f"{task['task_id'][:8]}\n{task['name']}"), overflow="fold")
    for field, differs, values in rows(data):
        if field == "name":  # the header says it
            continue
        numbers = {float(value) for value in values if value} if field in METRICS else set()
        best = max(numbers) if len(numbers) > 1 else None  # a tie everywhere has no best
        cells = [Text(value, style="bold green" if best is not None and value and float(value) == best else "")
                 for value in values]
        table.add_row(Text("*" if differs else ""), Text(field), *cells, style="yellow" if differs else None)
    return table
