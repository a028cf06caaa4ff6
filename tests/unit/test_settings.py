"""The API's settings as users write them: path lists from the environment, and the per-user state dir."""

import os
from pathlib import Path

import pytest

from yolo_api.settings import ApiSettings, default_state_dir


@pytest.mark.parametrize("raw", ["/data", f"/data{os.pathsep}/models", '["/data", "/models"]', " /data "])
def test_allowed_roots_accept_a_plain_path_a_path_list_or_json(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("YOLO_API_ALLOWED_ROOTS", raw)
    roots = ApiSettings(backend="local").allowed_roots
    assert roots[0] == Path("/data") and set(roots) <= {Path("/data"), Path("/models")}


def test_the_state_directory_does_not_depend_on_the_working_directory(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.delenv("YOLO_API_STATE_DIR", raising=False)
    assert ApiSettings(backend="local").state_dir == default_state_dir() == tmp_path / "yolo-training"
