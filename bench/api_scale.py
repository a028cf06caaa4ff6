"""10,000 finished trainings with 300-epoch histories in the API server: one API replica's memory and its
``/task_status`` throughput against the ceiling, in the same run.

The emulated API server (its own process) holds 10,000 YoloTrainings whose status is what a finished
300-epoch run leaves (a bounded history, final metrics, conditions). The real API (Kubernetes backend,
its own process, as deployed: Kubernetes auth, metrics) lists them a page at a time into its slim index;
its resident memory is read from /proc once it is ready, and its peak (VmHWM) after the load. The ceiling
(a constant body of the same size) and ours alternate under the same load. Targets: peak < 300 MB, ours
>= 80% of the ceiling.
"""

import subprocess
import sys
from pathlib import Path

from bench.api_status import alternate, start_emulator


def _memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str]) -> None:
    """Print memory (ready, peak) and throughput (ours vs ceiling)."""
    count = int(argv[0]) if argv else 10_000
    seconds = int(argv[1]) if len(argv) > 1 else 8
    emulator, apiserver, ids, ids_file = start_emulator(count, "--finished")
    paths = [f"/task_status/{item['uid']}" for item in ids]
    memory: dict[str, float] = {}

    def started(kind: str, server: subprocess.Popen[str], ready_s: float) -> None:
        if kind == "ours":
            memory.update(ready_s=ready_s, ready=_memory_mb(server.pid, "VmRSS"))

    def loaded(kind: str, server: subprocess.Popen[str]) -> None:
        if kind == "ours":
            memory["peak"] = max(memory.get("peak", 0.0), _memory_mb(server.pid, "VmHWM"))

    try:
        results = alternate(("ceiling", "ours", "ceiling", "ours"), apiserver, ids_file, paths, seconds,
                            "--finished", started=started, loaded=loaded)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    ceiling, ours = results["ceiling"].requests_per_second, results["ours"].requests_per_second
    print(f"\n{count:,} finished 300-epoch trainings in the API server; /task_status, 50 connections, {seconds}s")
    print(f"index filled in {memory['ready_s']:.1f} s; API memory when ready {memory['ready']:.0f} MB, "
          f"peak {memory['peak']:.0f} MB (target < 300 MB)")
    for kind, load in results.items():
        print(f"{kind:<10}{load.requests_per_second:>10.0f} req/s  p50 {load.p50_ms:.2f} ms  p99 {load.p99_ms:.2f} ms"
              f"  errors {load.errors}")
    print(f"ours / ceiling = {ours / ceiling:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main(sys.argv[1:])
