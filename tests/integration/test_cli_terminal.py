"""``yoloctl``, ``yolo-api`` and the trainer as a user runs them: real processes in a real terminal (a pty).

The API is a real ``yolo-api --backend local`` process whose trainers are the fast stand-in
(tests/standin.py: the real reporter and SQLite sink, no ultralytics). Every failure must be one line
that says what to do, never a traceback, with the documented exit codes.
"""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pexpect
import pytest

from standin import standin_python
from waiting import eventually

BIN = Path(sys.executable).parent
SPAWN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "STANDIN_"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 60) -> tuple[int, str]:
    """Run a command in an 80-column pty; return its exit status and what the terminal showed."""
    child = pexpect.spawn(command[0], command[1:], env={**SPAWN_ENV, **(env or {})}, cwd=str(cwd) if cwd else None,
                          dimensions=(24, 80), encoding="utf-8", timeout=timeout)
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -(child.signalstatus or 0)), str(child.before)


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@dataclass
class Api:
    url: str
    state: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None

    def start(self, cwd: Path | None = None) -> None:
        port = self.url.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [str(BIN / "yolo-api"), "--backend", "local", "--port", port, "--state-dir", str(self.state)],
            env={**SPAWN_ENV, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        eventually(self.ready, timeout=60)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def interrupt(self) -> str:
        """Ctrl+C: what the API prints until it exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        return out

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {(self.state / 'api-token').read_text().strip()}"}

    def client_env(self) -> dict[str, str]:
        return {"YOLO_API_URL": self.url, "YOLO_API_STATE_DIR": str(self.state)}


def stop_trainers(db: Path) -> None:
    """Stop the trainers the API left running (its Ctrl+C keeps them), by their process group."""
    with sqlite3.connect(db) as conn:
        pids = [pid for (pid,) in conn.execute("SELECT pid FROM tasks WHERE pid IS NOT NULL")]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "d.yaml").write_text("train: x\n")  # the stand-in never reads it
    env = {"YOLO_API_TRAINER_PYTHON": standin_python(tmp_path), "YOLO_API_POLL_INTERVAL": "0.1",
           "YOLO_API_SSE_POLL_INTERVAL": "0.1", "YOLO_API_LOCAL_GPUS": "0",
           "YOLO_API_ALLOWED_ROOTS": f"{data}{os.pathsep}{tmp_path / 'models'}",  # a plain path list, not JSON
           "STANDIN_EPOCH_SECONDS": "0.3"}
    server = Api(f"http://127.0.0.1:{free_port()}", tmp_path / "state", env)
    server.start()
    try:
        yield server
    finally:
        if server.process and server.process.poll() is None:
            server.interrupt()
        stop_trainers(tmp_path / "state" / "state.db")


def test_every_command_says_in_one_line_that_the_api_is_down(tmp_path: Path) -> None:
    env = {"YOLO_API_URL": f"http://127.0.0.1:{free_port()}", "YOLO_API_STATE_DIR": str(tmp_path)}
    for command in (["list"], ["status", "abc"], ["watch", "abc", "--give-up-after", "0"], ["cancel", "abc"],
                    ["logs", "abc"], ["submit", "yolov8n.yaml", "d.yaml"]):
        code, output = run([str(BIN / "yoloctl"), *command], env=env)
        line = one_line(output)
        assert code == 3 and line.startswith("yoloctl: cannot reach the API at http://127.0.0.1:"), (command, output)
        assert "is yolo-api running" in line


def test_submit_types_hyperparameters_and_resolves_paths_from_the_callers_directory(api: Api, tmp_path: Path) -> None:
    code, output = run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", "d.yaml", "--epochs", "2",
                        "--hp", "lr0=.01", "--hp", "cos_lr=true", "--hp", "optimizer=SGD"],
                       env=api.client_env(), cwd=tmp_path / "data")
    assert code == 0, output
    task_id, hint = [line for line in output.splitlines() if line.strip()]
    assert len(task_id) == 36 and f"yoloctl watch {task_id[:8]}" in hint
    row = httpx.get(f"{api.url}/tasks/{task_id}", headers=api.headers).json()["data"]
    assert row["data"] == str(tmp_path / "data" / "d.yaml") and row["model"] == "yolov8n.yaml"
    assert row["hyperparameters"] == {"lr0": 0.01, "cos_lr": True, "optimizer": "SGD"}
    assert row["gpus"] == 0  # no gpus asked for, no CUDA here: the CPU


@pytest.mark.parametrize(("hp", "expected"), [
    ("seed", "--hp 'seed': expected KEY=VALUE"),
    ("time=1h", "--hp time: must be a number of hours, got '1h'"),
    ("seed=1.5", "--hp seed: must be an integer"),
    ("project=/etc", "the trainer chooses where outputs are written"),
    ("lr=1", "unknown hyperparameter 'lr'"),
])
def test_bad_hyperparameters_are_one_line_and_nothing_is_sent(api: Api, hp: str, expected: str) -> None:
    code, output = run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", "d.yaml", "--hp", hp], env=api.client_env())
    assert code == 2 and expected in one_line(output)
    assert httpx.get(f"{api.url}/tasks", headers=api.headers).json()["data"]["total"] == 0


def test_list_shows_full_ids_and_a_unique_prefix_finds_a_task(api: Api, tmp_path: Path) -> None:
    ids = [run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", str(tmp_path / "data" / "d.yaml"), "--epochs", epochs],
               env=api.client_env())[1].split()[0] for epochs in ("1", "100")]
    code, output = run([str(BIN / "yoloctl"), "list"], env=api.client_env())
    assert code == 0 and all(task_id in output for task_id in ids), output  # whole, in 80 columns
    code, output = run([str(BIN / "yoloctl"), "status", ids[0][:8]], env=api.client_env())
    assert code == 0 and ids[0] in output
    code, output = run([str(BIN / "yoloctl"), "status", ""], env=api.client_env())
    assert code == 4 and "the start of several task ids" in one_line(output)
    code, output = run([str(BIN / "yoloctl"), "status", "zzz"], env=api.client_env())
    assert code == 4 and "no training's id starts with 'zzz'" in one_line(output)
    code, output = run([str(BIN / "yoloctl"), "cancel", ids[1][:8]], env={**api.client_env(), "YOLO_LANG": "zh"})
    assert code == 0 and "任务已取消" in output  # the spec's language, asked for
    code, output = run([str(BIN / "yoloctl"), "list", "--state", "cancelled"], env=api.client_env())
    assert ids[1] in output and ids[0] not in output


def test_a_wrong_token_file_is_an_error_not_a_bare_401(api: Api, tmp_path: Path) -> None:
    env = {**api.client_env(), "YOLO_API_TOKEN_FILE": str(tmp_path / "nope")}
    code, output = run([str(BIN / "yoloctl"), "list"], env=env)
    assert code == 2 and f"YOLO_API_TOKEN_FILE={tmp_path / 'nope'} cannot be read" in one_line(output)
    code, output = run([str(BIN / "yoloctl"), "list"], env={"YOLO_API_URL": api.url, "YOLO_API_STATE_DIR": "/nowhere"})
    assert code == 4 and "YOLO_API_TOKEN" in one_line(output)  # no token at all: says how to give one


def test_watch_follows_across_an_api_restart_and_ctrl_c_says_what_happens(api: Api, tmp_path: Path) -> None:
    data = str(tmp_path / "data" / "d.yaml")
    task_id = run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", data, "--epochs", "12"],
                  env=api.client_env())[1].split()[0]
    watcher = pexpect.spawn(str(BIN / "yoloctl"), ["watch", task_id[:8]], env={**SPAWN_ENV, **api.client_env()},
                            dimensions=(24, 100), encoding="utf-8", timeout=60)
    watcher.expect(r"epoch [2-9]/12")
    said = api.interrupt()  # Ctrl+C on the API while the trainer runs
    assert "1 training(s) keep running without the API" in said and "kill -TERM -" in said, said
    assert "--token-file" not in said and "YOLO_API_TOKEN_FILE=" in said  # no flag that does not exist
    pid = int(said.split("trainer pids ")[1].split(";")[0])
    os.kill(pid, 0)  # ... and it did keep running
    watcher.expect("API unreachable")
    api.start()  # the same state directory: the trainer is re-attached
    watcher.expect(pexpect.EOF, timeout=90)
    watcher.close()
    assert watcher.exitstatus == 0 and "success" in str(watcher.before), watcher.before


def test_watch_exit_codes_tell_failure_from_an_unreachable_api(api: Api, tmp_path: Path) -> None:
    api.interrupt()
    api.env["STANDIN_FAIL"] = "1"
    api.start()
    data = str(tmp_path / "data" / "d.yaml")
    task_id = run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", data, "--epochs", "1"],
                  env=api.client_env())[1].split()[0]
    code, output = run([str(BIN / "yoloctl"), "watch", task_id], env=api.client_env())
    assert code == 1 and "failed (TrainingError): RuntimeError: the stand-in was told to fail" in output
    api.interrupt()
    code, output = run([str(BIN / "yoloctl"), "watch", task_id, "--give-up-after", "1"], env=api.client_env())
    assert code == 3 and "gave up after 1s" in output and "Traceback" not in output


def test_yolo_api_refuses_bad_setups_in_one_line(api: Api, tmp_path: Path) -> None:
    yolo_api = str(BIN / "yolo-api")
    code, output = run([yolo_api, "--backend", "local", "--port", "0", "--state-dir", str(api.state)], env=api.env)
    assert code == 1 and f"state directory {api.state} is in use by another yolo-api" in one_line(output)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, output = run([yolo_api, "--backend", "local", "--state-dir", str(blocker / "state")], env=api.env)
    assert code == 1 and "give a writable --state-dir" in one_line(output)
    code, output = run([yolo_api, "--backend", "local"], env={**api.env, "YOLO_API_PORT": "eighty"})
    assert code == 2 and "invalid setting --port (YOLO_API_PORT): " in one_line(output)
    code, output = run([yolo_api, "--help"], env=api.env)
    assert code == 0 and "127.0.0.1" in output and "8000" in output and "yolo-training" in output


def test_help_says_what_is_printed_and_the_defaults() -> None:
    code, output = run([str(BIN / "yoloctl"), "submit", "--help"], env={"COLUMNS": "100"})
    text = " ".join(output.split())
    assert code == 0 and "Prints its task id alone on stdout" in text and "default: 100" in text
    code, output = run([str(BIN / "yoloctl"), "--help"])
    assert code == 0 and "3 the API could not be reached" in " ".join(output.split())


def test_the_trainer_without_arguments_says_what_it_needs() -> None:
    code, output = run([sys.executable, "-m", "yolo_trainer"])
    assert code == 2 and "nothing to train: give --model and --data" in one_line(output)


def test_logs_show_what_the_terminal_showed_cut_at_a_whole_character(api: Api, tmp_path: Path) -> None:
    """Colour codes removed, a carriage-return progress line as it ended, and a --max-bytes cut that falls
    inside a character (the API reads bytes) starts at the next whole one."""
    task_id = run([str(BIN / "yoloctl"), "submit", "yolov8n.yaml", str(tmp_path / "data" / "d.yaml"), "--epochs",
                   "1"], env=api.client_env())[1].split()[0]
    eventually(lambda: httpx.get(f"{api.url}/tasks/{task_id}", headers=api.headers).json()["data"]["status"]
               == "success", timeout=60)
    tail = "训练 started\n  1/1  50%|█████     |\r  1/1 100%|██████████|\r\n\x1b[32m\x1b[1mdone\x1b[0m\x1b[K\n"
    (api.state / "logs" / f"{task_id}.log").write_bytes(b"earlier lines\n" + tail.encode())
    cut = len(tail.encode()) - 1  # one byte into 训
    code, output = run([str(BIN / "yoloctl"), "logs", task_id, "--max-bytes", str(cut)], env=api.client_env())
    assert code == 0 and output.replace("\r\n", "\n") == "练 started\n  1/1 100%|██████████|\ndone\n", repr(output)
