"""HTTP load: wrk when installed (it costs far less CPU than a Python client), else an asyncio client."""

import asyncio
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Load:
    """Throughput and latency of one run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, paths: list[str], *, seconds: int, connections: int, headers: dict[str, str]) -> Load:
    """Run wrk with a Lua script that picks a random path per request."""
    script = "paths = " + json.dumps(paths).replace("[", "{").replace("]", "}") + "\n" + (
        "request = function() return wrk.format(nil, paths[math.random(#paths)]) end\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    flags = [f"-H{name}: {value}" for name, value in headers.items()]
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *flags, "-s", handle.name,
                          url],
                         capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    return Load(rps, p50, p99, errors, "wrk")


async def _python_load(url: str, paths: list[str], seconds: int, connections: int, headers: dict[str, str]) -> Load:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=connections),
                                 headers=headers) as client:
        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get(random.choice(paths))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 400
        await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    return Load(len(latencies) / seconds, latencies[len(latencies) // 2] * 1000,
                latencies[int(len(latencies) * 0.99)] * 1000, errors, "python")


def measure(url: str, paths: list[str], *, seconds: int = 8, connections: int = 50,
            headers: dict[str, str] | None = None) -> Load:
    """Load ``url`` for ``seconds`` with ``connections`` concurrent connections, sending ``headers``."""
    if shutil.which("wrk"):
        return wrk(url, paths, seconds=seconds, connections=connections, headers=headers or {})
    return asyncio.run(_python_load(url, paths, seconds, connections, headers or {}))
