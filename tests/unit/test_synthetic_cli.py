"""``python -m yolo_trainer.synthetic``: the README's first command, a real command line (``--help`` used to
draw a dataset in a folder named ``--help``)."""

from pathlib import Path

import pytest

from yolo_trainer.synthetic import main


def test_help_only_helps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_it_draws_where_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([str(tmp_path / "shapes"), "--train", "2", "--val", "1", "--classes", "3"])
    data = Path(capsys.readouterr().out.strip())
    assert data == tmp_path / "shapes" / "data.yaml" and "2: triangle" in data.read_text()
    assert len(list((tmp_path / "shapes" / "images" / "train").iterdir())) == 2
