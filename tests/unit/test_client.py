"""yoloctl's event-stream reader and its fallback to polling, over httpx's mock transport."""

import json

import httpx

from yolo_api.client import envelopes, sse_events

PROGRESS = {"code": 0, "data": {"status": "progress", "result": {"current_epoch": 1}}}
DONE = {"code": 0, "data": {"status": "success", "result": {}}}


def test_sse_parsing_joins_data_lines_and_skips_comments() -> None:
    lines = [": ping", "event: status", "id: 1", 'data: {"a":', "data: 1}", "", "event: end", "data: success", ""]
    assert list(sse_events(lines)) == [("status", '{"a":\n1}'), ("end", "success")]


def test_events_are_used_when_the_server_has_them() -> None:
    stream = "".join(f"event: status\ndata: {json.dumps(body)}\n\n" for body in (PROGRESS, DONE)) + \
        "event: end\ndata: success\n\n"
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})

    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api") as http:
        assert list(envelopes(http, "t1", interval=0)) == [PROGRESS, DONE]
    assert seen == ["/task_status/t1/events"]  # no polling at all


def test_falls_back_to_polling_without_an_events_endpoint() -> None:
    answers = iter([PROGRESS, PROGRESS, DONE])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"code": 1})
        return httpx.Response(200, json=next(answers))

    with httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api") as http:
        assert list(envelopes(http, "t1", interval=0)) == [PROGRESS, DONE]  # unchanged envelopes not repeated
