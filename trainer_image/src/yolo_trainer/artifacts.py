"""A run's artifacts: uploaded to ``<output>/<task id>/`` in object storage, or listed where they were written.

The artifacts are ``best.pt``, ``last.pt``, ``results.csv``, ``args.yaml`` and the data YAML used (as
``data.yaml``), each with its size and sha256 in ``status.artifacts``. With an output in object storage:

* during training, ``last.pt`` is uploaded every ``every`` epochs from ultralytics' ``on_model_save``
  callback, off the training thread (a snapshot is copied first, the newest one wins, a failed upload
  is logged and retried at the next checkpoint): a pod that lands on another node resumes from it
  (:func:`restore_run`) without a PVC;
* at the end, every artifact is uploaded, each retried with backoff (:class:`~yolo_trainer.storage.ObjectStore`);
  an upload that still fails raises, and the training is not reported as a success.
"""

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_crd.locations import ARGS, BEST, DATA, LAST, RESULTS, S3Uri
from yolo_trainer.storage import ObjectStore, StorageError, sha256_of

log = logging.getLogger(__name__)
Publish = Callable[[list[dict[str, Any]]], None]


def run_files(run_dir: Path, data_yaml: Path | None) -> dict[str, Path]:
    """The artifact files of a run directory that exist, by artifact name."""
    files = {BEST: run_dir / "weights" / BEST, LAST: run_dir / "weights" / LAST, RESULTS: run_dir / RESULTS,
             ARGS: run_dir / ARGS}
    if data_yaml is not None:
        files[DATA] = data_yaml
    return {name: path for name, path in files.items() if path.is_file()}


def local_artifacts(run_dir: Path, data_yaml: Path | None) -> list[dict[str, Any]]:
    """The artifacts as files where the trainer wrote them (no output in object storage)."""
    return [{"name": name, "uri": str(path), "size": path.stat().st_size, "sha256": sha256_of(path)}
            for name, path in run_files(run_dir, data_yaml).items()]


class Uploader:
    """Uploads a run's artifacts under ``prefix`` and publishes the manifest (see the module docstring)."""

    def __init__(self, store: ObjectStore, prefix: S3Uri, publish: Publish, *, every: int = 1) -> None:
        self._store = store
        self._prefix = prefix
        self._publish = publish
        self._every = max(1, every)
        self._manifest: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queued: Path | None = None
        self._snapshots: Path | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="checkpoint-uploader", daemon=True)
        self._thread.start()

    def upload(self, name: str, path: Path) -> dict[str, Any]:
        """Upload one file as artifact ``name`` now; raises :class:`StorageError` once retries are spent."""
        sha256 = sha256_of(path)
        uri = self._prefix.child(name)
        self._store.upload(path, uri, sha256)
        entry = {"name": name, "uri": str(uri), "size": path.stat().st_size, "sha256": sha256}
        with self._lock:
            self._manifest[name] = entry
            manifest = list(self._manifest.values())
        self._publish(manifest)
        return entry

    def on_model_save(self, trainer: Any) -> None:
        """Ultralytics callback: snapshot ``last.pt`` every ``every`` epochs and queue it. Never raises."""
        try:
            epoch = int(trainer.epoch) + 1
            if epoch % self._every:
                return
            self._snapshots = Path(trainer.save_dir) / ".upload"
            snapshot = self._snapshots / LAST
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(trainer.last), snapshot.with_suffix(".tmp"))
            with self._wake:
                snapshot.with_suffix(".tmp").replace(snapshot)  # under the lock: never replaced while uploading
                self._queued = snapshot
                self._wake.notify()
        except Exception:
            log.exception("could not queue last.pt for upload; training continues")

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._queued is None and not self._closing:
                    self._wake.wait()
                if self._queued is None:
                    return
                snapshot, self._queued = self._queued, None
                staged = snapshot.with_name("uploading.pt")
                snapshot.replace(staged)
            try:
                self.upload(LAST, staged)
                log.info("uploaded checkpoint %s", self._prefix.child(LAST))
            except StorageError as exc:
                log.warning("checkpoint upload failed (the next checkpoint retries): %s", exc.message)
            except Exception:
                log.exception("checkpoint upload failed (the next checkpoint retries)")

    def close(self) -> None:
        """Stop taking checkpoints; wait for an upload in flight; remove the snapshots."""
        with self._wake:
            self._closing = True
            self._queued = None
            self._wake.notify()
        self._thread.join()
        if self._snapshots is not None:
            shutil.rmtree(self._snapshots, ignore_errors=True)

    def finish(self, run_dir: Path, data_yaml: Path | None) -> list[dict[str, Any]]:
        """Wait for a checkpoint upload in flight, then upload every artifact; return the manifest."""
        self.close()
        for name, path in run_files(run_dir, data_yaml).items():
            self.upload(name, path)
        with self._lock:
            return list(self._manifest.values())


def restore_run(store: ObjectStore, prefix: S3Uri, run_dir: Path) -> bool:
    """Fetch an interrupted run's files from object storage when ``run_dir`` has no checkpoint of its own.

    Returns True when a ``last.pt`` was restored (the run then resumes from it, or, if it finished,
    only validates ``best.pt`` again).
    """
    if (run_dir / "weights" / LAST).is_file() or store.head(prefix.child(LAST)) is None:
        return False
    for name, dest in ((BEST, run_dir / "weights" / BEST), (RESULTS, run_dir / RESULTS), (ARGS, run_dir / ARGS),
                       (LAST, run_dir / "weights" / LAST)):  # last.pt last: its presence says the rest is there
        if store.head(prefix.child(name)) is not None:
            store.download(prefix.child(name), dest)
    log.info("restored %s from %s: resuming from it", LAST, prefix)
    return True
