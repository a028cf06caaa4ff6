"""A fast trainer stand-in in a thread: two epochs and final metrics, reported through the real reporter and sink.

For load tests (hundreds of trainings on two cores), where running ultralytics per training would test the
machine rather than the operator and the API. Everything from the status patch on is the real code path.
"""

from __future__ import annotations

import threading

from kubernetes import client


class FakeProcess:
    """Quacks like the ``subprocess.Popen`` of a trainer: ``poll()`` and ``wait()`` give its exit code."""

    def __init__(self, env: dict[str, str], api: client.ApiClient) -> None:
        self.pid = -1
        self.returncode: int | None = None
        self._thread = threading.Thread(target=self._run, args=(env, api), daemon=True)
        self._thread.start()

    def _run(self, env: dict[str, str], api: client.ApiClient) -> None:
        from yolo_crd.status import FinalMetrics, StopReason
        from yolo_trainer.progress import ProgressTracker, epoch_metrics
        from yolo_trainer.reporter import StatusReporter
        from yolo_trainer.sinks.kubernetes import KubernetesStatusSink

        reporter = StatusReporter(KubernetesStatusSink(env["YOLO_TRAINER_NAMESPACE"], env["YOLO_TRAINER_NAME"],
                                                       uid=env["YOLO_TRAINER_TASK_ID"], api_client=api),
                                  min_interval=0.2, max_backoff=2.0)
        tracker = ProgressTracker(2)
        reporter.update(tracker.initializing())
        reporter.update(tracker.started(0, 2))
        for epoch in (1, 2):
            row = {"metrics/precision(B)": 0.5, "metrics/recall(B)": 0.5, "metrics/mAP50(B)": 0.4 + epoch / 10,
                   "metrics/mAP50-95(B)": 0.2}
            reporter.update(tracker.epoch_done(epoch_metrics(epoch, row), 2, last=epoch == 2) or {})
        final = FinalMetrics.from_validation(0.6, 0.2, 0.5, 0.5)
        reporter.update(tracker.completed(final, "/fake/weights/best.pt", "/fake", StopReason.EPOCHS))
        self.returncode = 0 if reporter.close(timeout=60) else 3

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def wait(self) -> int | None:
        self._thread.join()
        return self.returncode
