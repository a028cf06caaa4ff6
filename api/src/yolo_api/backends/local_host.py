"""What the local backend needs to know about this machine: its CUDA devices, the state directory's owner,
signal names, and the end of a trainer's log.
"""

import fcntl
import logging
import os
import signal
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

_PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


class StateDirInUse(RuntimeError):
    """Another API process holds the state directory."""


class StateLock:
    """An advisory lock on ``<state dir>/api.lock``, held while an API runs over that directory.

    Two APIs over one state directory would both launch its queued trainings (breaking ``max_parallel``)
    and both reap them. The kernel releases the lock when the process dies, so a crash leaves none behind.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "api.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StateDirInUse` naming the process that holds it."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirInUse(f"state directory {self.path.parent} is in use by another yolo-api (pid {holder}): "
                                "stop it, or give this one another --state-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Let the next API take the directory."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def cuda_devices(python: str) -> int:
    """How many CUDA devices torch sees in the trainer's interpreter (0 when it cannot tell)."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot ask %s for CUDA devices (%s); assuming none", python, exc)
        return 0
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].isdigit():
        log.warning("cannot ask %s for CUDA devices (exit %s); assuming none", python, done.returncode)
        return 0
    return int(lines[-1])


def signal_name(number: int) -> str:
    """``SIGKILL (9)`` for 9; the number alone when it names no signal."""
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)


def tail(path: Path, limit: int = 300) -> str:
    """The last non-blank line of a log file (at most ``limit`` characters), or "" when unreadable."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-limit:] if lines else ""


def log_end(path: Path, max_bytes: int) -> str | None:
    """The last ``max_bytes`` of a trainer's log (never starting inside a character), or None without a log."""
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        start = max(0, path.stat().st_size - max_bytes)
        handle.seek(start)
        data = handle.read()
    if start:  # a cut inside a character: drop its continuation bytes rather than show U+FFFD
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    return data.decode("utf-8", errors="replace")
