"""``/task_status/{id}/events`` with 1,000 open streams: API memory, and status change to delivery time.

The emulated API server holds 1,000 trainings; the real API (Kubernetes backend, as deployed) indexes
them; one client process opens an SSE stream per training. Then status changes are written to the
emulator one by one (as a trainer would), and each is timed from the write to the event on its stream.
Reported: the API's resident memory idle and with every stream open, and delivery p50/p99/max.
"""

import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.api_status import AUTH, _port, _ready, _start, start_emulator

GROUP_PATH = "/apis/yolo-operator.io/v1alpha1/namespaces/bench/yolotrainings"


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


ARRIVED = asyncio.Event()  # set on every arrival; the writer waits on it (one event loop: no lost wake-ups)


async def _stream(client: httpx.AsyncClient, uid: str, opened: asyncio.Event, arrivals: dict[tuple[str, int], float],
                  counter: list[int], total: int) -> None:
    async with client.stream("GET", f"/task_status/{uid}/events") as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "status":
                body = json.loads(line[5:])
                result = body["data"].get("result") or {}
                epoch = int(result.get("current_epoch", 0))
                if (uid, epoch) not in arrivals:
                    arrivals[(uid, epoch)] = time.monotonic()
                    ARRIVED.set()
                if epoch == 5 and (uid, -1) not in arrivals:  # the seeded first event
                    arrivals[(uid, -1)] = 0.0
                    counter[0] += 1
                    if counter[0] == total:
                        opened.set()


async def run(url: str, apiserver: str, ids: list[dict[str, str]], changes: int, pid: int) -> dict[str, Any]:
    """Open a stream per training, then write ``changes`` status changes and time each delivery."""
    arrivals: dict[tuple[str, int], float] = {}
    opened = asyncio.Event()
    counter = [0]
    limits = httpx.Limits(max_connections=len(ids) + 10, max_keepalive_connections=len(ids) + 10)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=httpx.Timeout(60.0)) as client, \
            httpx.AsyncClient(base_url=apiserver, timeout=30.0) as kube:
        tasks = [asyncio.create_task(_stream(client, item["uid"], opened, arrivals, counter, len(ids)))
                 for item in ids]
        started = time.monotonic()
        await asyncio.wait_for(opened.wait(), timeout=180)
        result: dict[str, Any] = {"open_seconds": time.monotonic() - started, "rss_open": rss_mb(pid)}
        delays: list[float] = []
        for index in range(changes):
            item = ids[(index * 7) % len(ids)]
            epoch = 6 + index // len(ids)
            patch = {"status": {"currentEpoch": epoch, "progress": epoch * 5.0}}
            written = time.monotonic()
            await kube.patch(f"{GROUP_PATH}/{item['name']}/status", json=patch,
                             headers={"Content-Type": "application/merge-patch+json"})
            deadline = written + 10
            while (item["uid"], epoch) not in arrivals and time.monotonic() < deadline:
                ARRIVED.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ARRIVED.wait(), timeout=deadline - time.monotonic())
            if (item["uid"], epoch) in arrivals:
                delays.append(arrivals[(item["uid"], epoch)] - written)
            await asyncio.sleep(0.01)
        result["delays"] = delays
        result["rss_after"] = rss_mb(pid)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def main(argv: list[str]) -> None:
    """Start the emulator and ours, open the streams, time the deliveries, print the table."""
    count = int(argv[0]) if argv else 1000
    changes = 200
    emulator, apiserver, ids, ids_file = start_emulator(count)
    port = _port()
    server = _start("ours", port, "--apiserver", apiserver, "--ids", str(ids_file))
    try:
        url = f"http://127.0.0.1:{port}"
        _ready(url, "/readyz")
        httpx.get(f"{url}/task_status/{ids[0]['uid']}", headers=AUTH)
        idle = rss_mb(server.pid)
        print(f"opening {count} SSE streams...", file=sys.stderr, flush=True)
        result = asyncio.run(run(url, apiserver, ids, changes, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
        emulator.terminate()
        emulator.wait(timeout=30)
    delays = sorted(result["delays"])
    print(f"\n/task_status/{{id}}/events, {count} streams open at once, {changes} status changes")
    loaded = max(result["rss_open"], result["rss_after"])
    print(f"streams opened in {result['open_seconds']:.1f}s; API memory {idle:.0f} MiB idle -> {loaded:.0f} MiB "
          f"with {count} streams open ({(loaded - idle) * 1024 / count:.0f} KiB per stream)")
    if delays:
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(f"change -> delivery: p50 {statistics.median(delays) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {delays[-1] * 1000:.1f} ms ({len(delays)}/{changes} delivered; target p99 < 1000 ms)")
    else:
        print("no change was delivered")


if __name__ == "__main__":
    main(sys.argv[1:])
