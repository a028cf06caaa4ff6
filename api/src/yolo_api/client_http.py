"""What ``yoloctl`` needs from the API, with every failure turned into one line and an exit code.

* :class:`CliError` carries the line and the code; ``yoloctl`` prints it and exits, never a traceback.
* The token comes from ``YOLO_API_TOKEN``, the file ``YOLO_API_TOKEN_FILE`` (which must exist), or the
  local API's generated token in its state directory (``YOLO_API_STATE_DIR``, else the per-user default),
  so it does not depend on the directory a command is run from.
* :func:`follow` reads the events endpoint with httpx-sse and keeps following across API restarts: it
  reconnects with ``Last-Event-ID`` until the API has been unreachable for ``give_up_after`` seconds.
* Every request says which language the user reads (``Accept-Language``, :func:`preferred_language`): the
  API answers in the spec's Chinese to a client that does not say.
* :func:`printable_log` turns the end of a trainer's log into what a terminal would have shown; :func:`say` prints
  server and user text as it is; :func:`local_path` makes a command line's relative paths the caller's.
"""

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
from httpx_sse import EventSource
from rich.console import Console

from yolo_api.settings import default_state_dir
from yolo_crd.locations import is_s3, source_ref

EXIT_FAILED: Final = 1  # the training failed or was cancelled
EXIT_USAGE: Final = 2  # a command line that cannot be sent (click's code for usage errors)
EXIT_UNREACHABLE: Final = 3  # the API could not be reached
EXIT_REFUSED: Final = 4  # the API answered with an error (unknown task, no token, invalid request)
FULL_ID_LENGTH: Final = 36


class CliError(Exception):
    """A failure to print as one line, with the process exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def say(out: Console, text: str) -> None:
    """Print server or user text as it is: no markup, no highlighting, no wrapping inside a path."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def local_path(value: str, *, keep_bare_name: bool) -> str:
    """A relative path made absolute against the caller's working directory (the API has its own).

    ``keep_bare_name`` leaves a bare name such as ``yolov8n.yaml`` alone when no such file is here: ultralytics
    knows it (or, for ``.pt``, downloads it when the trainer is allowed to).
    """
    if is_s3(value) or source_ref(value) is not None:
        return value  # object storage, or an earlier training: not a path
    path = Path(value).expanduser()
    if path.is_absolute() or (keep_bare_name and os.sep not in value and not path.exists()):
        return str(path) if path.is_absolute() else value
    return str(path.absolute())


def resolve_token() -> str | None:
    """The bearer token; see the module docstring. Never a command-line flag: those show in ``ps``."""
    token = os.environ.get("YOLO_API_TOKEN", "").strip()
    if token:
        return token
    named = os.environ.get("YOLO_API_TOKEN_FILE", "").strip()
    if named:
        try:
            text = Path(named).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"YOLO_API_TOKEN_FILE={named} cannot be read ({exc.strerror or exc}): point it at the "
                           "API's token file, or unset it", EXIT_USAGE) from None
        if not text:
            raise CliError(f"YOLO_API_TOKEN_FILE={named} is empty", EXIT_USAGE)
        return text
    state_dir = os.environ.get("YOLO_API_STATE_DIR", "").strip()
    default = (Path(state_dir).expanduser() if state_dir else default_state_dir()) / "api-token"
    try:
        return default.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def unreachable(url: str, exc: Exception) -> CliError:
    """The one line for an API that does not answer."""
    why = type(exc).__name__ if not str(exc) else str(exc)
    return CliError(f"cannot reach the API at {url} ({why}): is yolo-api running there? (--url or YOLO_API_URL)",
                    EXIT_UNREACHABLE)


def refused(response: httpx.Response, code: int = EXIT_REFUSED) -> CliError:
    """The one line for an error answer: its message, detail and field errors (exit ``code``)."""
    try:
        body = response.json()
    except ValueError:
        return CliError(f"the API answered HTTP {response.status_code}: {response.text[:200]}", code)
    parts = [str(body.get("message") or f"HTTP {response.status_code}")]
    if body.get("detail"):
        parts.append(str(body["detail"]))
    for error in (body.get("data") or {}).get("errors") or []:
        parts.append(f"{'.'.join(error.get('loc', [])[1:]) or 'body'}: {error.get('msg')}")
    if response.status_code == 401:
        parts.append("set YOLO_API_TOKEN or YOLO_API_TOKEN_FILE (local API: <state-dir>/api-token)")
    return CliError(" — ".join(parts), code)


def preferred_language(environ: Mapping[str, str]) -> str:
    """``zh`` or ``en``, the API's two languages: ``YOLO_LANG`` if set, else the locale that names the language
    of messages (the first set of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as POSIX orders them): ``zh*`` is
    Chinese, anything else (``C``, ``en_US.UTF-8``, unset) English."""
    chosen = environ.get("YOLO_LANG", "").strip().lower()
    if chosen:
        if chosen not in ("en", "zh"):
            raise CliError(f"YOLO_LANG={chosen}: expected en or zh", EXIT_USAGE)
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").strip()
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def client(url: str) -> httpx.Client:
    """An HTTP client for the API with the caller's token and language."""
    token = resolve_token()
    headers = {"Accept-Language": preferred_language(os.environ)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=url, timeout=30.0, headers=headers)


# CSI (colours, cursor moves, erase line), OSC (titles, links: ended by BEL or ST) and two-byte escapes
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def printable_log(text: str) -> str:
    """A trainer's log as a terminal would have left it: colour and cursor codes removed, each line that was
    redrawn with carriage returns (progress bars) shown as it ended, and no broken character at the start
    where the API cut the log at ``max_bytes`` (it decodes a cut character as U+FFFD)."""
    text = _ESCAPES.sub("", text.lstrip("\ufffd"))
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        drawn = [part for part in line.split("\r") if part.strip()]
        lines.append(drawn[-1] if drawn else "")
    return "\n".join(lines)


def call(http: httpx.Client, method: str, path: str, *, ok: tuple[int, ...] = (200,), usage: tuple[int, ...] = (),
         **kwargs: Any) -> httpx.Response:
    """One request; a transport failure or an answer outside ``ok`` becomes a :class:`CliError`: exit code 2 for a
    status in ``usage`` (a 422 to a command line's values: it cannot be sent as it is), else 4."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise unreachable(str(http.base_url), exc) from None
    if response.status_code not in ok:
        raise refused(response, EXIT_USAGE if response.status_code in usage else EXIT_REFUSED)
    return response


def resolve_id(http: httpx.Client, given: str) -> str:
    """A full task id from a unique prefix of one (what ``yoloctl list`` shows)."""
    if len(given) >= FULL_ID_LENGTH:
        return given
    matches: list[str] = []
    offset = 0
    while True:
        page = call(http, "GET", "/tasks", params={"offset": offset, "limit": 500}).json()["data"]
        matches += [item["task_id"] for item in page["items"] if item["task_id"].startswith(given)]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"] or len(matches) > 1:
            break
    if not matches:
        raise CliError(f"no training's id starts with {given!r} (yoloctl list shows them)", EXIT_REFUSED)
    if len(matches) > 1:
        raise CliError(f"{given!r} is the start of several task ids ({', '.join(matches[:3])}, ...): give more of it",
                       EXIT_REFUSED)
    return matches[0]


def follow(http: httpx.Client, task_id: str, *, give_up_after: float = 600.0,
           on_retry: Callable[[str], None] = lambda _: None, sleep: Callable[[float], None] = time.sleep,
           ) -> Iterator[dict[str, Any]]:
    """The task's envelopes as the API pushes them, until its end; see the module docstring."""
    last_id: str | None = None
    down_since: float | None = None
    delay = 0.5
    while True:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        try:
            with http.stream("GET", f"/task_status/{task_id}/events", headers=headers,
                             timeout=httpx.Timeout(30.0, read=90.0)) as response:
                if response.status_code == 204:  # the end was delivered before the connection broke
                    return
                if response.status_code != 200:
                    response.read()
                    raise refused(response)
                down_since, delay = None, 0.5
                for event in EventSource(response).iter_sse():
                    last_id = event.id or last_id
                    if event.event == "status":
                        yield dict(json.loads(event.data))
                    elif event.event == "end":
                        return
        except httpx.TransportError as exc:
            now = time.monotonic()
            down_since = down_since or now
            if now - down_since > give_up_after:
                raise CliError(f"{unreachable(str(http.base_url), exc)}; gave up after {give_up_after:.0f}s",
                               EXIT_UNREACHABLE) from None
            on_retry(f"API unreachable ({type(exc).__name__}); retrying")
            sleep(delay)
            delay = min(delay * 2, 5.0)
