"""The README's "Use it on one machine" commands, run as written from an empty directory (a fresh clone has
no dataset): the dataset they train is drawn by the command before them, the API started there accepts it,
and ``yoloctl submit`` prints a task id. The README links nothing outside the repository (issue 19).

The trainer is the fast stand-in (tests/standin.py): what is checked is the commands, not ultralytics.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from test_cli_terminal import BIN, SPAWN_ENV, Api, free_port, stop_trainers

from standin import standin_python

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def one_machine_commands() -> list[list[str]]:
    """The shell lines of the README's "Use it on one machine" block, comments and `&` removed."""
    section = README.split("## Use it on one machine", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_the_quickstart_draws_the_dataset_it_trains(tmp_path: Path) -> None:
    commands = one_machine_commands()
    submit = next(command for command in commands if command[:2] == [".venv/bin/yoloctl", "submit"])
    data = tmp_path / submit[3]
    drawing = [command for command in commands[:commands.index(submit)] if command[0] == ".venv/bin/python"]
    assert drawing, "the README trains a dataset that no command before it draws"
    for command in drawing:
        subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, check=True, timeout=120,
                       env={**SPAWN_ENV, "PYTHONDONTWRITEBYTECODE": "1"})
    assert data.is_file() and "names:" in data.read_text(), data
    serve = next(command for command in commands if command[0] == ".venv/bin/yolo-api")
    assert serve[1:] == ["--backend", "local", "--port", "8000", "&"]
    api = Api(f"http://127.0.0.1:{free_port()}", tmp_path / "state", {
        "YOLO_API_TRAINER_PYTHON": standin_python(tmp_path), "YOLO_API_LOCAL_GPUS": "0"})
    api.start(cwd=tmp_path)
    try:
        done = subprocess.run([str(BIN / "yoloctl"), *submit[1:]], check=False, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**SPAWN_ENV, **api.client_env()})
        assert done.returncode == 0 and len(done.stdout.strip()) == 36, done.stderr
    finally:
        api.interrupt()
        stop_trainers(tmp_path / "state" / "state.db")


def test_the_readme_links_only_what_the_repository_has() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" in target:
            continue
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), target
