"""Schemathesis over the OpenAPI schema: generated requests never make the API answer a server error."""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ApiSettings(backend="local", auth_token=TOKEN),
                                                                        MemoryBackend()))
schema = schema.exclude(path="/tasks/events")  # a stream of every change: it never ends by design


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    # No task here is a failed training, so every 5xx would be a bug (the spec's 500 is for failed tasks only).
    case.call_and_validate(checks=[not_a_server_error], headers=AUTH)
