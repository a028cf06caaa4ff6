"""``/ui``: the training dashboard, static files served by the API itself (no CDN, no build step).

The page holds no data: it reads ``/tasks``, ``/tasks/{id}/metrics``, ``/tasks/{id}/artifacts``,
``/task_status/{id}``, ``/tasks/compare`` and the events endpoint with the user's bearer token, so serving it
needs no authentication. The token reaches the page in the URL fragment (``/ui#token=...``), which browsers
never send to a server, or through its form. Plots are fetched with the token too and shown from ``blob:``
URLs: the CSP lets images come from the API, ``blob:`` and ``data:`` URLs, and everything else (scripts,
styles, requests) from the API only, inline styles aside (uPlot sets them).

The page links its icon (``static/favicon.svg``); ``/favicon.ico`` answers the same icon to what asks for
it there (a browser on ``/docs`` or on a JSON answer), rather than a 404 in every log.
"""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

router = APIRouter()
STATIC = resources.files("yolo_api") / "static"
#: Everything from the API itself; images also from blob: (plots fetched with the token) and data: URLs.
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:"


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The API's root leads to the dashboard (a browser pointed at the API lands somewhere useful)."""
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
async def ui() -> HTMLResponse:
    """The dashboard page."""
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer",
                                 "Content-Security-Policy": CSP})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """The dashboard's icon (an SVG: browsers take it whatever the URL's extension)."""
    return Response((STATIC / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                    headers={"Cache-Control": "max-age=86400"})


def static_files() -> StaticFiles:
    """The page's script, styles and charting library (uPlot, MIT; see static/uPlot.LICENSE)."""
    return StaticFiles(directory=str(STATIC))
