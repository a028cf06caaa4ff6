"""The operator at scale, against the emulated API server: creation-to-Job latency and bulk reconcile time.

The operator runs as its own process (``kopf run -m yolo_operator.handlers``), so its peak memory is its
own; the emulated API server runs in this process. Latency is measured server-side, from the create of a
YoloTraining to the create of its Job, on the emulator's clock.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kubernetes import client, config  # noqa: E402

from apiserver import ApiServer  # noqa: E402

NS = "bench"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run(
    server: ApiServer, api: client.ApiClient, count: int, prefix: str, pace: float = 0.0
) -> tuple[list[float], float]:
    """Create ``count`` trainings (one per ``pace`` seconds; 0: as fast as possible) and wait for their Jobs."""
    custom = client.CustomObjectsApi(api)
    started = time.monotonic()
    for index in range(count):
        if pace:
            time.sleep(max(0.0, started + index * pace - time.monotonic()))
        custom.create_namespaced_custom_object("yolo-operator.io", "v1alpha1", NS, "yolotrainings", {
            "metadata": {"name": f"{prefix}-{index:04d}"},
            "spec": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": 10, "gpus": 1}})
    names = {f"{prefix}-{index:04d}" for index in range(count)}
    deadline = time.monotonic() + 600

    def training_of(write: Any) -> str:  # a Job is named after its training's uid: find it by its label
        return str(((write.body or {}).get("metadata", {}).get("labels") or {}).get("yolo-operator.io/training", ""))

    while True:
        created = {training_of(w) for w in server.emulator.writes if w.plural == "jobs" and w.status == 201}
        if names <= created:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the operator did not create every Job in time")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    made = {(w.body or {}).get("metadata", {}).get("name"): w.at for w in server.emulator.writes
            if w.plural == "yolotrainings" and w.method == "POST" and w.status == 201}
    jobs_at = {training_of(w): w.at for w in server.emulator.writes if w.plural == "jobs" and w.status == 201}
    return [jobs_at[name] - made[name] for name in names], elapsed


def main(argv: list[str]) -> None:
    """Print creation-to-Job latency over 200 paced resources and the time to reconcile 1,000 at once."""
    counts = [int(a) for a in argv] or [200, 1000]
    server = ApiServer()
    kubeconfig = server.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", NS)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    operator = subprocess.Popen([sys.executable, "-m", "kopf", "run", "-m", "yolo_operator.handlers", "--standalone",
                                 "--all-namespaces", "--quiet"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with config.new_client_from_config(str(kubeconfig)) as api:
            time.sleep(3.0)  # let kopf start its watches
            latencies, _ = _run(server, api, counts[0], "lat", pace=0.05)
            _, bulk = _run(server, api, counts[1], "bulk") if len(counts) > 1 else ([], 0.0)
        peak = _peak_rss_mb(operator.pid)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        server.close()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"\noperator against the emulated API server ({counts[0]} resources created 20 per second)")
    print(f"creation-to-Job latency: median {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
          "(target: median < 200 ms)")
    if len(counts) > 1:
        print(f"{counts[1]} resources created at once, all Jobs created in {bulk:.1f} s (target < 60 s)")
    print(f"operator peak memory (VmHWM): {peak:.0f} MB (target < 300 MB)")


if __name__ == "__main__":
    main(sys.argv[1:])
