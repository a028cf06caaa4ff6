"""Domain errors carry their HTTP status and envelope; they are mapped to responses in one place."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from yolo_crd.envelope import MESSAGES, message
from yolo_crd.retention import Reaped
from yolo_crd.wire import problem

#: Answers of the HTTP layer itself (no such route, wrong method, body too large), in the envelope's languages.
HTTP_MESSAGES: dict[int, dict[str, str]] = {
    404: {"zh": "接口不存在", "en": "No such route"},
    405: {"zh": "不支持此请求方法", "en": "Method not allowed"},
    413: {"zh": "请求体过大", "en": "Request body too large"},
    501: {"zh": "此后端不提供该功能", "en": "Not served by this backend"},
}
#: Answers about sweeps (the envelope's own messages are about one training), in the same two languages.
SWEEP_MESSAGES: dict[str, dict[str, str]] = {
    "sweep_submitted": {"zh": "调参任务已提交", "en": "Sweep submitted"},
    "sweep_not_found": {"zh": "调参任务不存在", "en": "Sweep not found"},
    "sweep_exists": {"zh": "调参任务名称已被占用", "en": "A sweep of that name exists"},
    "sweep_cancel_requested": {"zh": "已请求取消调参任务", "en": "Sweep cancel requested"},
    "sweep_cancelled": {"zh": "调参任务已取消", "en": "Sweep cancelled"},
    "sweep_finished": {"zh": "调参任务已结束", "en": "Sweep already finished"},
}


def language(accept_language: str) -> str:
    """``en`` when English ranks above Chinese in an Accept-Language header, else the spec's Chinese."""
    best, best_q = "zh", -1.0
    for position, item in enumerate(accept_language.lower().split(",")):
        tag, _, params = item.strip().partition(";")
        try:
            q = float(params.strip().removeprefix("q=")) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        lang = tag.strip().split("-")[0]
        if lang in ("en", "zh") and q > best_q and q > 0:
            best, best_q = lang, q - position * 1e-6  # equal weights: the first listed wins
    return best


def request_lang(request: HTTPConnection) -> str:
    """``en`` when the client prefers English (Accept-Language), else the spec's Chinese."""
    return language(request.headers.get("accept-language", ""))


def http_message(status: int, lang: str, default: str) -> str:
    """The message of an HTTP-level error in ``lang``."""
    return HTTP_MESSAGES.get(status, {}).get(lang, default)


def sweep_message(key: str, lang: str) -> str:
    """One of :data:`SWEEP_MESSAGES` in ``lang`` (Chinese unless ``en``)."""
    return SWEEP_MESSAGES[key]["en" if lang == "en" else "zh"]


class ApiError(Exception):
    """An error answered as ``{code: 1, message, data}`` with an HTTP status."""

    def __init__(self, status: int, message_key: str, data: dict[str, Any], detail: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or message_key)
        self.status = status
        self.message_key = message_key
        self.data = data
        self.detail = detail
        self.headers = headers


def unavailable(detail: str) -> ApiError:
    """A 503 that says what to wait for: the answer exists, but cannot be given right now."""
    return ApiError(503, "unavailable", {}, detail=detail, headers={"Retry-After": "1"})


def task_not_found(task_id: str) -> ApiError:
    """The spec's unknown-task answer: 404 with code 1 (never pending, never 500)."""
    return ApiError(404, "not_found", {"task_id": task_id[:200]})


def task_reaped(gone: Reaped) -> ApiError:
    """404 for a finished training that was deleted (its TTL, or by hand): it existed, and its artifacts stay."""
    return ApiError(404, "reaped", {"task_id": gone.task_id, "reason": "Reaped", "finished_at": gone.finished_at,
                                    "deleted_at": gone.deleted_at}, detail=gone.explain())


def sweep_not_found(sweep_id: str) -> ApiError:
    """404 for a sweep that does not exist, or whose namespace the caller may not read (no existence oracle)."""
    return ApiError(404, "sweep_not_found", {"sweep_id": sweep_id[:200]})


def sweep_exists(name: str, namespace: str | None) -> ApiError:
    """409 for a sweep name already taken in its namespace: its trials are named after it."""
    where = f" in namespace {namespace!r}" if namespace else ""
    return ApiError(409, "sweep_exists", {"name": name, "namespace": namespace},
                    detail=f"a sweep named {name!r} exists{where}: choose another name, or leave it out")


def invalid(errors: list[dict[str, Any]]) -> ApiError:
    """A 422 with every problem listed, so a client can fix them all at once."""
    return ApiError(422, "invalid", {"errors": errors})


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for error in errors:
        cleaned.append({"loc": [str(part) for part in error.get("loc", ())], "msg": problem(error),
                        "type": error.get("type")})
    return cleaned


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the spec's envelope (code 1) instead of FastAPI's default shapes."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        lang = request_lang(request)
        text = message(exc.message_key, lang) if exc.message_key in MESSAGES["zh"] else \
            sweep_message(exc.message_key, lang) if exc.message_key in SWEEP_MESSAGES else \
            http_message(exc.status, lang, exc.message_key)
        body: dict[str, Any] = {"code": 1, "message": text, "data": exc.data}
        if exc.detail:
            body["detail"] = exc.detail
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _api_error(request, invalid(_clean(list(exc.errors()))))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        data: dict[str, Any] = {"path": request.url.path[:200]}
        if exc.status_code == 405:
            data["method"] = request.method
        text = http_message(exc.status_code, request_lang(request), str(exc.detail))
        body = {"code": 1, "message": text, "data": data}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))
