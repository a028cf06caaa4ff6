"""A run's artifacts: uploaded to ``<output>/<task id>/`` in object storage, or listed where they were written.

The artifacts are ``best.pt``, ``last.pt``, ``results.csv``, ``args.yaml``, the data YAML used (as
``data.yaml``), the run's plots (:mod:`yolo_trainer.plots`) and its exports (:mod:`yolo_trainer.export`), each
with its kind (:func:`~yolo_trainer.plots.kind_of`), size and sha256 in ``status.artifacts``. With an output in
object storage:

* during training, every ``every`` epochs, ultralytics' ``on_model_save`` callback (or, in multi-GPU DDP
  runs, where ultralytics runs no callback of ours, :meth:`Uploader.on_results_row` from the results.csv
  follower) snapshots the run's state and uploads it off the training thread: ``best.pt`` (when it
  changed), ``results.csv``, ``args.yaml``, then ``last.pt`` (last: its presence says the rest is there).
  The newest snapshot wins; a failed upload is logged and retried at the next checkpoint. A pod that
  lands on another node restores all of it (:func:`restore_run`) and resumes without a PVC: ``best.pt``
  must come back with ``last.pt``, since after a resume ultralytics writes a new one only when an epoch
  beats the old best;
* at the end, every artifact is uploaded, each retried with backoff (:class:`~yolo_trainer.storage.ObjectStore`);
  an upload that still fails raises, and the training is not reported as a success.
"""

import logging
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_crd.locations import ARGS, BEST, DATA, LAST, RESULTS, S3Uri
from yolo_trainer.plots import kind_of, select_plots
from yolo_trainer.storage import ObjectStore, StorageError, sha256_of, walk

log = logging.getLogger(__name__)
Publish = Callable[[list[dict[str, Any]]], None]


def run_files(run_dir: Path, data_yaml: Path | None) -> dict[str, Path]:
    """The artifact files of a run directory that exist, by artifact name: weights, metrics, config, plots."""
    files = {BEST: run_dir / "weights" / BEST, LAST: run_dir / "weights" / LAST, RESULTS: run_dir / RESULTS,
             ARGS: run_dir / ARGS}
    if data_yaml is not None:
        files[DATA] = data_yaml
    return {**{name: path for name, path in files.items() if path.is_file()}, **select_plots(run_dir)}


def artifact(name: str, uri: str, path: Path, sha256: str | None = None) -> dict[str, Any]:
    """One ``status.artifacts`` entry for the file at ``path``, stored at ``uri``."""
    entry = {"name": name, "kind": kind_of(name), "uri": uri, "size": path.stat().st_size,
             "sha256": sha256 or sha256_of(path)}
    return {key: value for key, value in entry.items() if value is not None}


def local_artifacts(run_dir: Path, data_yaml: Path | None) -> list[dict[str, Any]]:
    """The artifacts as files where the trainer wrote them (no output in object storage)."""
    return [artifact(name, str(path), path) for name, path in run_files(run_dir, data_yaml).items()]


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
        self._queued: list[tuple[str, Path]] | None = None  # the newest checkpoint not yet taken for upload
        self._wanted: tuple[int, Path, int, float] | None = None  # DDP: (epoch, run dir, row mtime, deadline)
        self._snapshots: Path | None = None
        self._best_saved = 0  # mtime of the best.pt last queued
        self._closing = False
        self.settle_seconds = 60.0  # DDP: how long a checkpoint may take to appear after its results row
        self._thread = threading.Thread(target=self._run, name="checkpoint-uploader", daemon=True)
        self._thread.start()

    def upload(self, name: str, path: Path) -> dict[str, Any]:
        """Upload one file as artifact ``name`` now; raises :class:`StorageError` once retries are spent."""
        sha256 = sha256_of(path)
        uri = self._prefix.child(name)
        self._store.upload(path, uri, sha256)
        entry = artifact(name, str(uri), path, sha256)
        with self._lock:
            self._manifest[name] = entry
            manifest = list(self._manifest.values())
        self._publish(manifest)
        return entry

    def on_model_save(self, trainer: Any) -> None:
        """Ultralytics callback: every ``every`` epochs, snapshot the run's state and queue it. Never raises."""
        try:
            if (int(trainer.epoch) + 1) % self._every == 0:
                self._snapshot(Path(trainer.save_dir), Path(trainer.best), Path(trainer.last), verify=False)
        except Exception:
            log.exception("could not queue the checkpoint for upload; training continues")

    def on_results_row(self, epoch: int, save_dir: Path) -> bool:
        """The DDP path: called by the results.csv follower for each epoch's row (in the launching process).

        Rank 0 appends the row, then writes ``last.pt`` (and ``best.pt`` when the epoch is the best): every
        ``every`` epochs, the uploader's thread looks for that checkpoint, for at most ``settle_seconds``,
        and queues a copy only when it is whole (see :meth:`_snapshot`). One that does not settle is skipped
        with a warning: the next one retries. Returns at once, True when this epoch's checkpoint was asked
        for, and never raises.
        """
        try:
            if epoch % self._every:
                return False
            row_written = (save_dir / RESULTS).stat().st_mtime_ns
            with self._wake:
                self._wanted = (epoch, save_dir, row_written, time.monotonic() + self.settle_seconds)
                self._wake.notify()
            return True
        except Exception:
            log.exception("could not ask for the checkpoint's upload; training continues")
            return False

    def _settle(self, wanted: tuple[int, Path, int, float]) -> None:
        """One look for the wanted DDP checkpoint; queued when whole, dropped past its deadline."""
        epoch, save_dir, row_written, deadline = wanted
        weights = save_dir / "weights"
        last = weights / LAST
        try:
            taken = last.is_file() and last.stat().st_mtime_ns >= row_written and \
                self._snapshot(save_dir, weights / BEST, last, verify=True)
        except Exception:
            log.exception("epoch %d: could not take the checkpoint", epoch)
            taken = False
        with self._wake:
            if taken or time.monotonic() >= deadline:
                if not taken:
                    log.warning("epoch %d: no whole last.pt within %ss of its results row; the next checkpoint "
                                "retries", epoch, self.settle_seconds)
                if self._wanted is wanted:
                    self._wanted = None
            else:
                self._wake.wait(0.2)  # close() or a newer row wakes it early

    def _snapshot(self, save_dir: Path, best: Path, last: Path, *, verify: bool) -> bool:
        """Copy the run's state aside and queue it for upload.

        With ``verify`` (DDP: the files are written by another process, in place), nothing is queued and the
        answer is False unless ``last.pt`` and ``best.pt`` did not change while they were copied, both copies
        are whole checkpoints, and a ``best.pt`` that this epoch made is already written.
        """
        files = {RESULTS: save_dir / RESULTS, ARGS: save_dir / ARGS}
        best_saved = self._best_saved
        if best.is_file() and best.stat().st_mtime_ns != self._best_saved:
            files[BEST] = best
            best_saved = best.stat().st_mtime_ns
        files[LAST] = last  # last: restore_run takes last.pt's presence as "the rest is there"
        self._snapshots = save_dir / ".upload"
        pending = self._snapshots / "pending"
        shutil.rmtree(pending, ignore_errors=True)
        pending.mkdir(parents=True)
        order = [name for name, path in files.items() if path.is_file()]
        before = {name: _stamp(files[name]) for name in (LAST, BEST) if name in order}
        for name in order:
            shutil.copyfile(files[name], pending / name)
        if verify and (any(_stamp(files[name]) != stamp for name, stamp in before.items())
                       or not all(_whole(pending / name) for name in before)
                       or (_made_best(pending / LAST) and best.is_file()
                           and best.stat().st_mtime_ns < before[LAST][0])):
            return False
        self._best_saved = best_saved
        with self._wake:
            queued = self._snapshots / "queued"
            shutil.rmtree(queued, ignore_errors=True)
            pending.replace(queued)  # under the lock: never replaced while the uploader takes it
            self._queued = [(name, queued / name) for name in order]
            self._wake.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._queued is None and self._wanted is None and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                batch, self._queued = self._queued, None
                wanted = self._wanted
                if batch is not None:
                    assert self._snapshots is not None
                    sending = self._snapshots / "sending"
                    shutil.rmtree(sending, ignore_errors=True)
                    (self._snapshots / "queued").replace(sending)
            if batch is None:
                assert wanted is not None
                self._settle(wanted)
                continue
            try:
                for name, _ in batch:
                    self.upload(name, sending / name)
                log.info("uploaded checkpoint %s", self._prefix.child(LAST))
            except StorageError as exc:
                log.warning("checkpoint upload failed (the next checkpoint retries): %s", exc.message)
            except Exception:
                log.exception("checkpoint upload failed (the next checkpoint retries)")

    def close(self) -> None:
        """Stop taking checkpoints; wait for an upload in flight; remove the snapshots."""
        with self._wake:
            self._closing = True
            self._queued = self._wanted = None
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


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def _made_best(checkpoint: Path) -> bool:
    """Whether the epoch saved in ``last.pt`` was the best so far (ultralytics then writes best.pt after it)."""
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    fitness = (saved.get("train_metrics") or {}).get("fitness")
    return fitness is not None and saved.get("best_fitness") == fitness


def _whole(checkpoint: Path) -> bool:
    """Whether a checkpoint file is complete: torch.save's zip archive, every member's CRC intact."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def restore_run(store: ObjectStore, prefix: S3Uri, run_dir: Path) -> bool:
    """Fetch an interrupted run's files from object storage when ``run_dir`` has no checkpoint of its own.

    Returns True when a ``last.pt`` was restored (the run then resumes from it, or, if it finished,
    only validates ``best.pt`` again). The plots of a finished run come back too, so that its artifacts are
    listed again in full.
    """
    if (run_dir / "weights" / LAST).is_file() or store.head(prefix.child(LAST)) is None:
        return False
    try:
        plots = [name for _, name in walk(store, prefix) if "/" not in name and kind_of(name) == "plot"]
    except StorageError as exc:  # credentials may read objects without listing them; plots are not essential
        log.warning("the run's plots are not restored: %s", exc.message)
        plots = []
    for name in plots:
        store.download(prefix.child(name), run_dir / name)
    for name, dest in ((BEST, run_dir / "weights" / BEST), (RESULTS, run_dir / RESULTS), (ARGS, run_dir / ARGS),
                       (LAST, run_dir / "weights" / LAST)):  # last.pt last: its presence says the rest is there
        if store.head(prefix.child(name)) is not None:
            store.download(prefix.child(name), dest)
    log.info("restored %s from %s: resuming from it", LAST, prefix)
    return True
