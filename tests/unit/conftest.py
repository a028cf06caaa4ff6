"""Fixtures of the unit tests: the API over an in-memory backend (tests/fakes.py), with the token it accepts."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fakes import AUTH, TOKEN, MemoryBackend
from yolo_api.app import create_app
from yolo_api.settings import ApiSettings


@pytest.fixture
def backend() -> MemoryBackend:
    """An empty in-memory backend; a test fills it."""
    return MemoryBackend()


@pytest.fixture
def http(backend: MemoryBackend) -> Iterator[TestClient]:
    """The real app over ``backend``, every request with the bearer token."""
    with TestClient(create_app(ApiSettings(backend="local", auth_token=TOKEN), backend=backend), headers=AUTH) as client:
        yield client
