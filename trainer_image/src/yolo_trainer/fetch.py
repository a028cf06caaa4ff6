"""Inputs from object storage, fetched into a cache on the output volume and kept by ETag.

* ``data: s3://bucket/prefix/data.yaml``: the YAML's folder (every object under ``prefix/``) is fetched,
  or only the YAML and ``data.zip`` when a ``.zip`` of the YAML's name lies next to it (then extracted
  beside the YAML). The local copy is then checked like any dataset.
* ``model: s3://bucket/key.pt`` (or an earlier training's ``best.pt`` in object storage).

The cache lives under ``<output dir>/.cache``: a retried or preempted pod with the same output volume
finds the objects whose ETag has not changed and fetches only the others (a per-file manifest, written
after each file, so an interrupted fetch resumes where it stopped). Progress is reported as stage
``downloading`` with bytes and files done.
"""

import json
import logging
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from yolo_crd.locations import S3Uri, cache_dir, parse_s3
from yolo_trainer.errors import TrainingFailure, dataset_invalid, model_not_found, storage_failure
from yolo_trainer.storage import ObjectInfo, ObjectStore, StorageError, walk

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]
MANIFEST: Final = ".etags.json"
_REPORT_EVERY: Final = 0.5  # seconds between progress reports


class _Progress:
    """Bytes and files done of one fetch, reported at most every half second (and at the end).

    boto3 calls :meth:`add` from its transfer threads, hence the lock.
    """

    def __init__(self, uri: str, total_bytes: int, total_files: int, report: Report) -> None:
        self.view: dict[str, Any] = {"uri": uri, "doneBytes": 0, "totalBytes": total_bytes, "files": 0,
                                     "totalFiles": total_files, "cached": False}
        self._report = report
        self._last = float("-inf")
        self._lock = threading.Lock()

    def add(self, done_bytes: int = 0, files: int = 0, *, force: bool = False) -> None:
        """Count bytes and files done; report when due."""
        with self._lock:
            self.view["doneBytes"] += done_bytes
            self.view["files"] += files
            now = time.monotonic()
            due = force or now - self._last >= _REPORT_EVERY
            if due:
                self._last = now
            view = dict(self.view)
        if due:
            self._report(view)


def _inside(folder: Path, relative: str) -> Path:
    target = (folder / relative).resolve()
    if folder.resolve() not in target.parents:
        raise dataset_invalid(f"object key {relative!r} would be written outside the dataset folder")
    return target


def _fetch_all(store: ObjectStore, prefix: S3Uri, wanted: list[tuple[ObjectInfo, str]], folder: Path,
               progress: _Progress) -> list[str]:
    """Fetch the objects whose ETag differs from the manifest's; return the names fetched."""
    manifest_path = folder / MANIFEST
    manifest: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    fetched: list[str] = []
    for info, relative in wanted:
        dest = _inside(folder, relative)
        if manifest.get(relative) == info.etag and dest.is_file():
            progress.add(info.size, 1)
            continue
        store.download(prefix.child(relative), dest, progress.add)
        manifest[relative] = info.etag
        manifest_path.write_text(json.dumps(manifest))  # per file: an interrupted fetch resumes here
        fetched.append(relative)
        progress.add(0, 1)
    progress.view["cached"] = not fetched
    progress.add(force=True)
    return fetched


def fetch_dataset(store: ObjectStore, data: str, output_dir: Path, report: Report) -> Path:
    """Fetch ``data`` (an ``s3://`` dataset YAML) and what it needs; return the local YAML."""
    uri = parse_s3(data)
    folder = uri.parent
    try:
        objects = dict((relative, info) for info, relative in walk(store, folder))
    except StorageError as exc:
        if exc.kind == "missing":
            raise dataset_invalid(f"dataset {uri}: the bucket {uri.bucket!r} does not exist") from None
        raise storage_failure(exc) from None
    if uri.name not in objects:
        raise dataset_invalid(f"dataset file {uri} does not exist")
    archive = uri.name.rsplit(".", 1)[0] + ".zip"
    names = [uri.name, archive] if archive in objects else sorted(objects)
    wanted = [(objects[name], name) for name in names]
    target = cache_dir(output_dir, "datasets", data)
    progress = _Progress(data, sum(info.size for info, _ in wanted), len(wanted), report)
    try:
        fetched = _fetch_all(store, folder, wanted, target, progress)
    except StorageError as exc:
        raise as_failure(exc, dataset_invalid) from None
    if archive in objects and (archive in fetched or not (target / ".extracted").is_file()):
        _extract(target / archive, target)
    log.info("dataset %s: %d object(s) fetched, %d cached, in %s", data, len(fetched), len(wanted) - len(fetched),
             target)
    return target / uri.name


def _extract(archive: Path, folder: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(folder)  # zipfile drops absolute paths and '..' from member names
    except (zipfile.BadZipFile, OSError) as exc:
        raise dataset_invalid(f"dataset archive {archive.name} cannot be extracted: {exc}") from exc
    (folder / ".extracted").write_text(archive.name)


def fetch_model(store: ObjectStore, model: str, output_dir: Path, report: Report) -> Path:
    """Fetch weights from object storage (kept by ETag); a missing object fails with ModelNotFound."""
    uri = parse_s3(model)
    try:
        info = store.head(uri)
        if info is None:
            raise model_not_found(model)
        target = cache_dir(output_dir, "models", model)
        progress = _Progress(model, info.size, 1, report)
        _fetch_all(store, uri.parent, [(info, uri.name)], target, progress)
    except StorageError as exc:
        if exc.kind == "missing":
            raise model_not_found(model) from None
        raise storage_failure(exc) from None
    return target / uri.name


def as_failure(exc: StorageError, missing: Callable[[str], TrainingFailure]) -> TrainingFailure:
    """A storage error as a training failure; ``missing`` words a missing object for its context."""
    return missing(exc.message) if exc.kind in ("missing", "invalid") else storage_failure(exc)
