"""Bytes on the wire per status write and per watch event, at 10, 100 and 300 epochs, bounded vs unbounded.

A status write is the trainer's merge patch after an epoch (``{"status": ...}``); a watch event is what
every watcher (each API replica, the operator) receives for it: the whole resource in a MODIFIED event.
Both are built from the real progress tracker over a synthetic run; "unbounded" is the same patch with
the whole history, as the trainer sent it before ``status.history`` was bounded. Pure computation.
"""

import json
import random
import sys

from yolo_crd.history import epoch_metrics
from yolo_trainer.progress import ProgressTracker

COLUMNS = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)", "train/box_loss",
           "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss")
SPEC = {"model": "yolov8n.yaml", "data": "/data/shapes/data.yaml", "epochs": 300, "imgsz": 640, "batch": 16, "gpus": 1,
        "hyperparameters": {"lr0": 0.01, "patience": 50}}


def sizes(epochs: int) -> tuple[int, int, int, int]:
    """(write, event) bytes at ``epochs`` epochs: bounded history, then the whole history."""
    rng = random.Random(0)
    history = [epoch_metrics(e, {c: rng.uniform(0.1, 3.0) for c in COLUMNS}) for e in range(1, epochs + 1)]
    tracker = ProgressTracker(epochs)
    tracker.started(epochs - 1, epochs, history[:-1])
    patch = tracker.epoch_done(history[-1], epochs, last=False) or {}
    unbounded = {**patch, "history": [m.wire() for m in history]}
    operator = {"phase": "Running", "jobName": "shapes-5b8f0c4e", "observedGeneration": 1,
                "startTime": "2026-11-30T06:00:00Z",
                "conditions": [{"type": kind, "status": "Unknown", "reason": "Running", "message": "the trainer is "
                                "running", "lastTransitionTime": "2026-11-30T06:00:00Z"}
                               for kind in ("Succeeded", "Running", "Scheduled")]}
    meta = {"name": "shapes", "namespace": "team-a", "uid": "5b8f0c4e-2d4b-4b1e-9d7a-000000000001",
            "resourceVersion": "123456789", "generation": 1, "creationTimestamp": "2026-11-30T06:00:00Z",
            "annotations": {"yolo-operator.io/last-handled": json.dumps({"spec": SPEC})}}

    def event(status_patch: dict[str, object]) -> int:
        obj = {"apiVersion": "yolo-operator.io/v1alpha1", "kind": "YoloTraining", "metadata": meta, "spec": SPEC,
               "status": {**operator, **status_patch}}
        return len(json.dumps({"type": "MODIFIED", "object": obj}))

    return (len(json.dumps({"status": patch})), event(patch), len(json.dumps({"status": unbounded})), event(unbounded))


def main(argv: list[str]) -> None:
    """Print the table for each number of epochs given (default 10, 100, 300)."""
    print("\nstatus write and watch event sizes (bytes of JSON), history bounded vs whole")
    print(f"{'epochs':>7} {'write':>8} {'event':>8} {'write (whole)':>14} {'event (whole)':>14}")
    for epochs in [int(a) for a in argv] or [10, 100, 300]:
        write, event, whole_write, whole_event = sizes(epochs)
        print(f"{epochs:>7} {write:>8} {event:>8} {whole_write:>14} {whole_event:>14}")


if __name__ == "__main__":
    main(sys.argv[1:])
