"""Our trainer vs plain ``yolo train``: wall time with the same arguments on the same data, and the delay
from each epoch's end to its status write.

Ours runs as in a Job: ``python -m yolo_trainer`` with the Kubernetes sink, patching a YoloTraining on the
emulated API server (its own process, as the API server would be) at the default report interval. Plain
is the ultralytics CLI with the arguments our trainer passes. Runs alternate (plain, ours, plain, ours)
so that drift in machine load hits both; the best of each is kept, and the median of the per-round
ratios is printed beside it. Epoch ends are taken from ``results.csv`` (ultralytics appends a row, saves
the checkpoints, then runs the epoch-end callbacks), polled every 5 ms in both kinds of run; status
writes are seen on a watch of the training, as any client sees them. Both clocks are
``time.monotonic()``, shared by the processes of one machine.

``--device 0 --imgsz 640 --train 2000`` on a GPU machine measures images/s on the card.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from bench.api_status import start_emulator

TRAININGS = "/apis/yolo-operator.io/v1alpha1/namespaces/bench/yolotrainings"


@dataclass
class Runs:
    """Measurements of one kind of run, one entry per round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    per_epoch: list[float] = field(default_factory=list)


class CsvWatcher(threading.Thread):
    """Record when each row of a results.csv appears (a stat per poll; the file is read when it grew)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.rows, self.stop = path, list[float](), threading.Event()

    def run(self) -> None:
        seen = -1
        while not self.stop.is_set():
            try:
                size = self.path.stat().st_size
                if size != seen:
                    seen = size
                    lines = self.path.read_text().count("\n") - 1
                    now = time.monotonic()
                    while len(self.rows) < lines:
                        self.rows.append(now)
            except (FileNotFoundError, UnicodeDecodeError):
                pass
            time.sleep(0.005)


class StatusWatch(threading.Thread):
    """Watch one YoloTraining and record when each ``currentEpoch`` is first seen."""

    def __init__(self, apiserver: str, name: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{apiserver}{TRAININGS}?watch=true&fieldSelector=metadata.name%3D{name}&timeoutSeconds=600"
        self.seen: dict[int, float] = {}

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=None) as response:
                for line in response.iter_lines():
                    if line:
                        status = json.loads(line)["object"].get("status") or {}
                        self.seen.setdefault(int(status.get("currentEpoch") or 0), time.monotonic())
        except httpx.HTTPError:
            return  # the emulator stopped


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return its wall time and the CPU seconds (user + system) it and its children used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def epoch_seconds(rows: list[float]) -> float:
    """Mean time between epoch ends: training without process start-up, imports and teardown."""
    return (rows[-1] - rows[0]) / (len(rows) - 1) if len(rows) > 1 else float("nan")


def record(runs: Runs, wall: float, cpu: float, rows: list[float]) -> None:
    """Add one run's wall time, CPU time and seconds per epoch."""
    runs.wall.append(wall)
    runs.cpu.append(cpu)
    runs.per_epoch.append(epoch_seconds(rows))


def arguments(data: Path, args: argparse.Namespace) -> dict[str, str]:
    """The ultralytics arguments both runs use (our trainer adds project/name/exist_ok/plots/verbose too)."""
    return {"model": "yolov8n.yaml", "data": str(data), "epochs": str(args.epochs), "imgsz": str(args.imgsz),
            "batch": str(args.batch), "device": args.device, "workers": str(args.workers), "seed": "0",
            "plots": "False", "verbose": "False", "exist_ok": "True"}


def write_kubeconfig(path: Path, apiserver: str) -> Path:
    """A kubeconfig for the emulated API server (it accepts any token)."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "bench",
              "clusters": [{"name": "bench", "cluster": {"server": apiserver}}],
              "users": [{"name": "bench", "user": {"token": "bench"}}],
              "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench", "namespace": "bench"}}]}
    path.write_text(yaml.safe_dump(config))
    return path


def create_training(apiserver: str, name: str, data: Path) -> str:
    """Create the YoloTraining whose status our trainer patches; returns its uid."""
    body = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": {"name": name},
            "spec": {"model": "yolov8n.yaml", "data": str(data)}}
    created = httpx.post(f"{apiserver}{TRAININGS}", json=body)
    created.raise_for_status()
    return str(created.json()["metadata"]["uid"])


def run_plain(data: Path, out: Path, args: argparse.Namespace, env: dict[str, str], runs: Runs) -> None:
    """One run of plain ``yolo train``."""
    yolo = Path(sys.executable).parent / "yolo"
    command = [str(yolo), "train", *(f"{k}={v}" for k, v in arguments(data, args).items()),
               f"project={out}", "name=plain"]
    watcher = CsvWatcher(out / "plain" / "results.csv")
    watcher.start()
    wall, cpu = timed(command, env)
    watcher.stop.set()
    record(runs, wall, cpu, watcher.rows)


def run_ours(data: Path, out: Path, args: argparse.Namespace, env: dict[str, str], apiserver: str,
             run_id: str, runs: Runs) -> list[float]:
    """One run of our trainer; returns the delays from each epoch end to its status seen by a watch."""
    out.mkdir(parents=True, exist_ok=True)
    uid = create_training(apiserver, run_id, data)  # the task id: the sink checks it against the resource's uid
    values = arguments(data, args)
    gpus = "0" if args.device == "cpu" else "1"
    command = [sys.executable, "-m", "yolo_trainer", "--model", "yolov8n.yaml", "--data", str(data),
               "--epochs", values["epochs"], "--imgsz", values["imgsz"], "--batch", values["batch"], "--gpus", gpus,
               "--device", args.device, "--hp", f"workers={args.workers}", "--hp", "seed=0", "--sink", "kubernetes",
               "--task-id", uid, "--output-dir", str(out)]
    status = StatusWatch(apiserver, run_id)
    status.start()
    watcher = CsvWatcher(out / uid / "results.csv")
    watcher.start()
    wall, cpu = timed(command, {**env, "KUBECONFIG": str(write_kubeconfig(out / "kubeconfig", apiserver)),
                                "YOLO_TRAINER_NAMESPACE": "bench", "YOLO_TRAINER_NAME": run_id})
    watcher.stop.set()
    record(runs, wall, cpu, watcher.rows)
    delays = []
    for epoch, ended in enumerate(watcher.rows, start=1):
        reported = [at for seen, at in status.seen.items() if seen >= epoch]
        if reported:
            delays.append(min(reported) - ended)
    return delays


def write_cost(apiserver: str, work: Path, data: Path, writes: int = 50) -> tuple[float, float]:
    """CPU and wall milliseconds of one status write (a 50-epoch history) from the trainer's sink."""
    from kubernetes import config

    from yolo_trainer.sinks.kubernetes import KubernetesStatusSink

    uid = create_training(apiserver, "sink-cost", data)
    with config.new_client_from_config(str(write_kubeconfig(work / "kubeconfig-sink", apiserver))) as api:
        sink = KubernetesStatusSink("bench", "sink-cost", uid=uid, api_client=api)
        history = [{"epoch": i, "mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.5,
                    "trainBoxLoss": 1.2, "trainClsLoss": 2.1, "trainDflLoss": 1.1} for i in range(1, 51)]
        patch = {"currentEpoch": 50, "progress": 50.0, "history": history, "metrics": history[-1]}
        for _ in range(5):
            sink.send(patch)
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(writes):
            sink.send(patch)
        return (time.thread_time() - cpu) / writes * 1000, (time.perf_counter() - wall) / writes * 1000


def report(args: argparse.Namespace, plain: Runs, ours: Runs, delays: list[float],
           sink_ms: tuple[float, float]) -> None:
    """Print the table and the ratios."""
    images = args.train * args.epochs
    print(f"\ntrainer: {args.epochs} epochs x {args.train} images, imgsz {args.imgsz}, batch {args.batch}, "
          f"device {args.device} (best of {args.repeat}, whole process)")
    print(f"{'run':<22}{'wall s':>10}{'images/s':>10}{'cpu s':>10}{'s/epoch':>10}   all runs (wall)")
    for name, runs in (("plain yolo train", plain), ("ours (k8s sink)", ours)):
        print(f"{name:<22}{min(runs.wall):>10.1f}{images / min(runs.wall):>10.1f}{min(runs.cpu):>10.1f}"
              f"{min(runs.per_epoch):>10.2f}   {', '.join(f'{w:.1f}' for w in runs.wall)}")
    rounds = statistics.median(o / p for o, p in zip(ours.wall, plain.wall, strict=True))
    print(f"ours / plain = {min(ours.wall) / min(plain.wall):.3f} best of each, {rounds:.3f} median of rounds; "
          f"CPU {min(ours.cpu) / min(plain.cpu):.3f}; seconds per epoch "
          f"{min(ours.per_epoch) / min(plain.per_epoch):.3f} (target <= 1.02)")
    print(f"one status write (50-epoch history) costs the trainer {sink_ms[0]:.1f} ms CPU, {sink_ms[1]:.1f} ms "
          "wall, off the training thread; one write per epoch")
    if delays:
        print(f"epoch end -> status write seen by a watch: median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms over {len(delays)} epochs (target < 1000 ms)")


def main(argv: list[str]) -> None:
    """Measure and print the table."""
    from yolo_trainer.synthetic import make_dataset

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--train", type=int, default=192, help="training images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    data = make_dataset(work / "data", classes=2, train=args.train, val=max(16, args.train // 4), imgsz=args.imgsz)
    # both runs: offline, no analytics, the same settings directory
    env = {**os.environ, "YOLO_CONFIG_DIR": str(work / "ultralytics"), "YOLO_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", "from ultralytics import settings; settings.update({'sync': False})"],
                   env=env, check=True, capture_output=True)
    emulator, apiserver, _, _ = start_emulator(0)
    plain, ours, delays = Runs(), Runs(), list[float]()
    try:
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}: plain yolo train...", file=sys.stderr, flush=True)
            run_plain(data, work / f"plain-{round_}", args, env, plain)
            print(f"round {round_ + 1}/{args.repeat}: our trainer...", file=sys.stderr, flush=True)
            delays += run_ours(data, work / f"ours-{round_}", args, env, apiserver, f"ours-{round_}", ours)
        sink_ms = write_cost(apiserver, work, data)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    report(args, plain, ours, delays, sink_ms)


if __name__ == "__main__":
    main(sys.argv[1:])
