"""The operator's cost per sweep trial, against the emulated API server: API calls and step time per trial.

20 sweeps of 50 trials each (random search over ``lr0`` and ``momentum``, 5 trials at a time) run to the end.
Each trial reports as a trainer does (a status merge patch per epoch, then the final one with ``finalMetrics``)
and finishes after two epochs. The sweep controller's step (:meth:`SweepController.step`: read the sweep, list
its trials, plan, create trials, write the status) is called directly, in this process, with the operator's own
:class:`SweepGateway`; kopf's machinery around it (the watch, the coalescing queue) is left out, and so is the
training controller's work for each trial (its Job), which ``bench/operator_reconcile.py`` measures.

Two schedules bound what the real operator does, which takes a step after a trial changes and coalesces the
changes that arrive while a step is queued:

* ``every report``: one step after every single trainer report (trainers that never report together; the
  most steps the operator can take);
* ``per round``: every running trial reports, then each sweep takes one step (a busy cluster, where the queue
  merges a sweep's trial events).

API calls are counted twice: by the gateway (``SweepGateway.calls``) and by the emulator (the requests it
served during steps only, trainer reports excluded). Step time is wall time against the emulator, which runs in
this process; CPU is this thread's alone (the controller and the Kubernetes client, not the emulator). Printed,
never asserted.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kubernetes import client, config  # noqa: E402

from apiserver import ApiServer  # noqa: E402
from yolo_crd.names import GROUP, LABEL_SWEEP, PLURAL, SWEEP_PLURAL, VERSION  # noqa: E402
from yolo_operator.sweep_gateway import SweepGateway  # noqa: E402
from yolo_operator.sweeps import SweepController  # noqa: E402

NS = "bench"
EPOCHS = 2


def _sweep_body(name: str, trials: int, parallelism: int, algorithm: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "YoloSweep", "metadata": {"name": name},
            "spec": {"template": {"model": "yolov8n.yaml", "data": "/data/d.yaml", "epochs": EPOCHS, "gpus": 1},
                     "parameters": {"lr0": {"min": 1e-4, "max": 1e-1, "scale": "log"},
                                    "momentum": {"min": 0.8, "max": 0.98}},
                     "algorithm": algorithm, "seed": 7, "objective": {"metric": "mAP50-95"},
                     "maxTrials": trials, "parallelism": parallelism}}


def _report(trial: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The trainer's status patch after ``epoch`` (the last one carries the final metrics)."""
    lr0 = float(trial["spec"].get("hyperparameters", {}).get("lr0", 0.01))
    value = round(max(0.01, 0.6 - abs(lr0 - 0.01) * 4) * epoch / EPOCHS, 4)
    metrics = {"epoch": epoch, "mAP50": value * 1.3, "mAP50-95": value, "precision": 0.5, "recall": 0.5,
               "train_box_loss": 2.0 / epoch, "train_cls_loss": 3.0 / epoch, "train_dfl_loss": 1.5 / epoch}
    status: dict[str, Any] = {"stage": "training", "currentEpoch": epoch, "totalEpochs": EPOCHS,
                              "progress": 100.0 * epoch / EPOCHS, "metrics": metrics,
                              "history": [{**metrics, "epoch": e} for e in range(1, epoch + 1)]}
    if epoch == EPOCHS:
        status["stage"] = "completed"
        status["finalMetrics"] = {"mAP50": value * 1.3, "mAP50-95": value, "precision": 0.5, "recall": 0.5,
                                  "f1_score": 0.5}
    return status


class Run:
    """One schedule over fresh sweeps: the counters and timings of every step."""

    def __init__(self, server: ApiServer, api: client.ApiClient, prefix: str, sweeps: int) -> None:
        self.server = server
        self.custom = client.CustomObjectsApi(api)
        self.gateway = SweepGateway(api)
        self.controller = SweepController(self.gateway)
        self.names = [f"{prefix}-{index:02d}" for index in range(sweeps)]
        self.step_seconds: list[float] = []
        self.cpu_seconds = 0.0  # this thread's CPU in steps: the controller and its client, not the emulator
        self.served = 0  # emulator requests during steps
        self.epochs: dict[str, int] = {}  # trial name -> epochs reported

    def requests(self) -> int:
        emulator = self.server.emulator
        return int(emulator.reads) + len(emulator.writes)

    def step(self, name: str) -> None:
        before = self.requests()
        started, cpu = time.perf_counter(), time.thread_time()
        self.controller.step(NS, name)
        self.step_seconds.append(time.perf_counter() - started)
        self.cpu_seconds += time.thread_time() - cpu
        self.served += self.requests() - before

    def unfinished(self, sweep: str) -> list[dict[str, Any]]:
        """The sweep's trials that have epochs left to report (read in place: no request is in flight)."""
        return [obj for (plural, _, name), obj in list(self.server.emulator.objects.items())
                if plural.endswith(f"/{PLURAL}") and (obj["metadata"].get("labels") or {}).get(LABEL_SWEEP) == sweep
                and self.epochs.get(name, 0) < EPOCHS]

    def report(self, trial: dict[str, Any]) -> None:
        name = trial["metadata"]["name"]
        epoch = self.epochs.get(name, 0) + 1
        self.epochs[name] = epoch
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, name,
                                                          {"status": _report(trial, epoch)})

    def done(self, name: str) -> bool:
        return ((self.server.emulator.get(SWEEP_PLURAL, NS, name) or {}).get("status") or {}).get("phase") in (
            "Succeeded", "Failed")

    def run(self, trials: int, parallelism: int, algorithm: str, every_report: bool) -> float:
        started = time.monotonic()
        for name in self.names:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, NS, SWEEP_PLURAL,
                                                        _sweep_body(name, trials, parallelism, algorithm))
            self.step(name)  # the create event
        active = list(self.names)
        while active:
            for name in active:
                for trial in self.unfinished(name):
                    self.report(trial)
                    if every_report:
                        self.step(name)
                if not every_report:
                    self.step(name)
            active = [name for name in active if not self.done(name)]
        return time.monotonic() - started

    def trials_made(self) -> int:
        return sum(1 for t in self.server.emulator.find(PLURAL, NS)
                   if (t["metadata"].get("labels") or {}).get(LABEL_SWEEP) in self.names)


def main(argv: list[str]) -> None:
    """Run both schedules and print the cost per trial."""
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=5)
    parser.add_argument("--algorithm", default="random", choices=("random", "tpe", "grid"))
    args = parser.parse_args(argv)
    server = ApiServer()
    kubeconfig = server.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", NS)
    rows = []
    try:
        with config.new_client_from_config(str(kubeconfig)) as api:
            for label, every_report in (("every report", True), ("per round", False)):
                run = Run(server, api, "er" if every_report else "pr", args.sweeps)
                wall = run.run(args.trials, args.parallelism, args.algorithm, every_report)
                rows.append((label, run, wall))
    finally:
        server.close()
    total = args.sweeps * args.trials
    print(f"\nsweep controller against the emulated API server: {args.sweeps} sweeps x {args.trials} trials "
          f"({args.algorithm}, {args.parallelism} at a time, {EPOCHS} epochs a trial; SweepController.step "
          "called directly)")
    print(f"{'schedule':<14}{'trials':>8}{'steps':>8}{'steps/trial':>13}{'calls/trial':>13}{'requests/trial':>16}"
          f"{'step ms p50':>13}{'step ms p99':>13}{'step ms/trial':>15}{'CPU ms/trial':>14}{'wall s':>8}")
    for label, run, wall in rows:
        made = run.trials_made()
        times = sorted(run.step_seconds)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{label:<14}{made:>8}{len(times):>8}{len(times) / made:>13.2f}{run.gateway.calls / made:>13.2f}"
              f"{run.served / made:>16.2f}{statistics.median(times) * 1000:>13.1f}{p99 * 1000:>13.1f}"
              f"{sum(times) * 1000 / made:>15.1f}{run.cpu_seconds * 1000 / made:>14.1f}{wall:>8.1f}")
    if any(run.trials_made() != total for _, run, _ in rows):
        print(f"note: expected {total} trials per schedule")


if __name__ == "__main__":
    main(sys.argv[1:])
