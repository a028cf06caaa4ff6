"""``GET /tasks/{id}/logs?max_bytes=`` locally: a cut inside a character drops its pieces, never shows U+FFFD."""

from pathlib import Path

from yolo_api.backends.local import LocalBackend
from yolo_api.settings import ApiSettings


def test_a_cut_inside_a_character_is_dropped(tmp_path: Path) -> None:
    backend = LocalBackend(ApiSettings(backend="local", state_dir=tmp_path / "state", local_gpus=0))
    backend.log_path("t").parent.mkdir(parents=True)
    backend.log_path("t").write_text("epoch 1 训练\nepoch 2 done\n", encoding="utf-8")
    whole = backend.log_path("t").stat().st_size
    assert backend.logs("t", whole) == "epoch 1 训练\nepoch 2 done\n"
    cut = backend.logs("t", len("练\nepoch 2 done\n".encode()) + 1)  # one byte into 训: its last two bytes remain
    assert cut == "练\nepoch 2 done\n" and "\ufffd" not in (cut or "")
