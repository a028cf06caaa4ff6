"""The export stage's cost: exporting ``best.pt`` to ONNX and TorchScript and validating each export (plus the
``.pt`` reference under the same settings), as a ratio of the training's own time, on the demo's model and
dataset (``yolov8n.yaml`` from scratch, 2 shapes, 256 train / 64 val images at 64 px, SGD as in
``yolo_api.demo``).

One run of the trainer (``yolo_trainer.runner.run``, in this process) with ``spec.export``; each status patch
is stamped as the sink receives it. Training is from the first ``training`` patch to the first ``exporting``
one (the epochs and the final validation of best.pt, plots included); exporting from there to the final
report. Printed, never asserted. ``--epochs 30`` is the demo's own length (about 2 minutes on 2 cores).
"""

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StampingSink:
    """Records each status patch with the time it arrived."""

    def __init__(self) -> None:
        self.patches: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def send(self, patch: dict[str, Any]) -> None:
        with self.lock:
            self.patches.append((time.monotonic(), patch))

    def first(self, stage: str) -> float:
        """When the first patch of ``stage`` arrived."""
        return next(at for at, patch in self.patches if patch.get("stage") == stage)

    def last(self, key: str) -> Any:
        """The newest value of a status field."""
        return next(patch[key] for _, patch in reversed(self.patches) if key in patch)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (ultralytics' progress bars included) to ``log`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def main(argv: list[str]) -> None:
    """Train, export, and print the table."""
    from yolo_crd.spec import YoloTrainingSpec
    from yolo_trainer.runner import run
    from yolo_trainer.settings import TrainerSettings
    from yolo_trainer.synthetic import make_dataset

    parser = argparse.ArgumentParser(prog="python -m bench.export_time")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (the demo's: 30)")
    parser.add_argument("--device", default=None, help="ultralytics device (default: the CPU)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    data = make_dataset(work / "data", classes=2, train=256, val=64, imgsz=64)
    spec = YoloTrainingSpec(
        model="yolov8n.yaml", data=str(data), epochs=args.epochs, imgsz=64, batch=32,
        gpus=0 if args.device in (None, "cpu") else 1, device=args.device, export=["onnx", "torchscript"],
        hyperparameters={"optimizer": "SGD", "lr0": 0.02, "warmup_epochs": 1, "seed": 0, "workers": 2})
    sink = StampingSink()
    settings = TrainerSettings(task_id="bench-export", output_dir=work / "runs", report_interval=0.0)
    print(f"export bench: training {args.epochs} epochs, then exporting (log: {work / 'trainer.log'})...",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    with output_to(work / "trainer.log"):
        code = run(settings, spec, sink)
    total = time.monotonic() - started
    if code != 0:
        print(f"export bench: the trainer exited {code}: {sink.last('trainingFailure')}")
        return
    training = sink.first("exporting") - sink.first("training")
    exporting = sink.first("completed") - sink.first("exporting")
    final = sink.last("finalMetrics")
    print(f"\nexport: {args.epochs} epochs of yolov8n.yaml on 256 images at 64 px, device {args.device or 'cpu'}; "
          f"final mAP50 {final['mAP50']}, mAP50-95 {final['mAP50-95']}; whole run {total:.1f}s")
    print(f"{'step':<34}{'seconds':>9}{'/ training':>12}{'mAP50':>8}{'mAP50-95':>10}{'delta':>9}")
    print(f"{'training (epochs + final val)':<34}{training:>9.1f}{1:>12.3f}")
    for record in sink.last("exports"):
        print(f"{record['format'] + ' (export + validation)':<34}{record['seconds']:>9.1f}"
              f"{record['seconds'] / training:>12.3f}{record.get('mAP50', float('nan')):>8.4f}"
              f"{record.get('mAP50-95', float('nan')):>10.4f}{record.get('deltaMAP50-95', float('nan')):>+9.4f}")
    reference = sink.last("exports")[0]
    ref50, ref50_95 = (reference.get(key, float("nan")) for key in ("referenceMAP50", "referenceMAP50-95"))
    print(f"{'exporting stage (all, with .pt ref)':<34}{exporting:>9.1f}{exporting / training:>12.3f}"
          f"{ref50:>8.4f}{ref50_95:>10.4f}")
    print(f"exports / training = {exporting / training:.3f}; best.pt's final mAP50-95 (rectangular batches of "
          f"{spec.batch}) is {final['mAP50-95']}, its reference under the exports' settings {ref50_95}")


if __name__ == "__main__":
    main(sys.argv[1:])
