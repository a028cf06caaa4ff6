"""Our trainer vs plain ``yolo train``: wall time with the same arguments on the same data, and the delay
from each epoch's end to its status write.

Ours runs as in a Job: ``python -m yolo_trainer`` with the Kubernetes sink, patching a YoloTraining on an
emulated API server (in this process) at the default report interval. Plain is the ultralytics CLI with
the arguments our trainer passes. Runs alternate (plain, ours, plain, ours) so that drift in machine load
hits both; the best of each is kept, and the median of the per-round ratios is printed beside it. Epoch
ends are taken from ``results.csv`` (ultralytics appends a row, saves the checkpoints, then runs the
epoch-end callbacks), polled every 5 ms in both runs; status writes from the emulator's request record.
Both clocks are ``time.monotonic()``, shared by the processes of one machine.

``--device cuda:0 --imgsz 640 --train 2000`` on a GPU machine measures images/s as well.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


class CsvWatcher(threading.Thread):
    """Record when each row of a results.csv appears."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.rows, self.stop = path, list[float](), threading.Event()

    def run(self) -> None:
        seen = -1
        while not self.stop.is_set():
            try:
                size = self.path.stat().st_size  # a stat per poll; the file is read only when it grew
                if size != seen:
                    seen = size
                    lines = self.path.read_text().count("\n") - 1
                    now = time.monotonic()
                    while len(self.rows) < lines:
                        self.rows.append(now)
            except (FileNotFoundError, UnicodeDecodeError):
                pass
            time.sleep(0.005)


def arguments(data: Path, args: argparse.Namespace) -> dict[str, str]:
    """The ultralytics arguments both runs use (our trainer adds project/name/exist_ok/plots/verbose too)."""
    return {"model": "yolov8n.yaml", "data": str(data), "epochs": str(args.epochs), "imgsz": str(args.imgsz),
            "batch": str(args.batch), "device": args.device, "workers": str(args.workers), "seed": "0",
            "plots": "False", "verbose": "False", "exist_ok": "True"}


def run_plain(data: Path, out: Path, args: argparse.Namespace, env: dict[str, str]) -> float:
    yolo = Path(sys.executable).parent / "yolo"
    command = [str(yolo), "train", *(f"{k}={v}" for k, v in arguments(data, args).items()),
               f"project={out}", "name=plain"]
    watcher = CsvWatcher(out / "plain" / "results.csv")  # watched too, so that both runs share its cost
    watcher.start()
    started = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.monotonic() - started
    watcher.stop.set()
    return wall


def run_ours(data: Path, out: Path, args: argparse.Namespace, env: dict[str, str], server: object,
             run_id: str) -> tuple[float, list[float]]:
    from kubernetes import client, config

    out.mkdir(parents=True, exist_ok=True)
    kubeconfig = server.write_kubeconfig(out / "kubeconfig")  # type: ignore[attr-defined]
    with config.new_client_from_config(str(kubeconfig)) as api:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "yolo-operator.io", "v1alpha1", "bench", "yolotrainings",
            {"metadata": {"name": run_id}, "spec": {"model": "yolov8n.yaml", "data": str(data)}})
    values = arguments(data, args)
    gpus = "0" if args.device == "cpu" else "1"
    command = [sys.executable, "-m", "yolo_trainer", "--model", "yolov8n.yaml", "--data", str(data),
               "--epochs", values["epochs"], "--imgsz", values["imgsz"], "--batch", values["batch"], "--gpus", gpus,
               "--device", args.device, "--hp", f"workers={args.workers}", "--hp", "seed=0", "--sink", "kubernetes",
               "--task-id", run_id, "--output-dir", str(out)]
    watcher = CsvWatcher(out / run_id / "results.csv")
    watcher.start()
    started = time.monotonic()
    subprocess.run(command, env={**env, "KUBECONFIG": str(kubeconfig), "YOLO_TRAINER_NAMESPACE": "bench",
                                 "YOLO_TRAINER_NAME": run_id}, check=True, capture_output=True)
    wall = time.monotonic() - started
    watcher.stop.set()
    writes = [w for w in server.emulator.writes  # type: ignore[attr-defined]
              if w.subresource == "status" and w.name == run_id and w.status == 200]
    delays = []
    for epoch, ended in enumerate(watcher.rows, start=1):
        reported = [w.at for w in writes if (w.body.get("status") or {}).get("currentEpoch", 0) >= epoch]
        if reported:
            delays.append(min(reported) - ended)
    return wall, delays


def main(argv: list[str]) -> None:
    """Measure and print the table."""
    from apiserver import ApiServer
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
    server = ApiServer()
    plain: list[float] = []
    ours: list[float] = []
    delays: list[float] = []
    try:
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}: plain yolo train...", file=sys.stderr, flush=True)
            plain.append(run_plain(data, work / f"plain-{round_}", args, env))
            print(f"round {round_ + 1}/{args.repeat}: our trainer...", file=sys.stderr, flush=True)
            wall, round_delays = run_ours(data, work / f"ours-{round_}", args, env, server, f"ours-{round_}")
            ours.append(wall)
            delays += round_delays
    finally:
        server.close()
    images = args.train * args.epochs
    print(f"\ntrainer: {args.epochs} epochs x {args.train} images, imgsz {args.imgsz}, batch {args.batch}, "
          f"device {args.device} (best of {args.repeat}, whole process wall time)")
    print(f"{'run':<22}{'wall s':>10}{'images/s':>10}   all runs")
    for name, walls in (("plain yolo train", plain), ("ours (k8s sink)", ours)):
        print(f"{name:<22}{min(walls):>10.1f}{images / min(walls):>10.1f}   {', '.join(f'{w:.1f}' for w in walls)}")
    rounds = sorted(o / p for o, p in zip(ours, plain, strict=True))
    print(f"ours / plain = {min(ours) / min(plain):.3f} best of each, {rounds[len(rounds) // 2]:.3f} median of "
          f"rounds (target <= 1.02)")
    if delays:
        print(f"epoch end -> status write: median {sorted(delays)[len(delays) // 2] * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms over {len(delays)} epochs (target < 1000 ms)")


if __name__ == "__main__":
    main(sys.argv[1:])
