"""The checkpoint uploader's DDP path: in multi-GPU runs ultralytics runs no callback of ours, so the
results.csv follower hands each epoch's row to the uploader, which must take only a whole ``last.pt``
written after that row (rank 0 appends the row, then rewrites last.pt in place)."""

import io
import os
import threading
from pathlib import Path

import pytest
import torch

from waiting import eventually
from yolo_crd.locations import S3Uri
from yolo_trainer.artifacts import Uploader


class Store:
    """Records uploads (a unit-test stand-in for ObjectStore; the integration tests use SeaweedFS)."""

    def __init__(self) -> None:
        self.uploaded: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def upload(self, path: Path, uri: S3Uri, sha256: str) -> None:
        with self.lock:
            self.uploaded.append((uri.name, path.read_bytes()))


def checkpoint(epoch: int, *, best: bool = False) -> bytes:
    """A checkpoint as ultralytics saves one (torch's zip format); ``best``: this epoch was the best so far."""
    buffer = io.BytesIO()
    torch.save({"epoch": epoch, "model": torch.zeros(2048), "best_fitness": 0.5,
                "train_metrics": {"fitness": 0.5 if best else 0.4}}, buffer)
    return buffer.getvalue()


def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "weights").mkdir()
    (tmp_path / "results.csv").write_text("epoch,metrics/mAP50(B)\n1,0.1\n")
    (tmp_path / "args.yaml").write_text("epochs: 4\n")
    return tmp_path


def uploader(store: Store, every: int = 1) -> Uploader:
    made = Uploader(store, S3Uri("b", "runs/t"), lambda manifest: None, every=every)  # type: ignore[arg-type]
    made.settle_seconds = 1.0
    return made


def names(store: Store) -> list[str]:
    with store.lock:
        return [name for name, _ in store.uploaded]


def test_a_whole_last_pt_written_after_the_row_is_uploaded(tmp_path: Path) -> None:
    store, save_dir = Store(), run_dir(tmp_path)
    whole = checkpoint(1)
    (save_dir / "weights" / "last.pt").write_bytes(whole)
    up = uploader(store)
    up.on_results_row(1, save_dir)
    eventually(lambda: "last.pt" in names(store), timeout=10)
    up.close()
    assert names(store) == ["results.csv", "args.yaml", "last.pt"]
    assert dict(store.uploaded)["last.pt"] == whole


def given_up(caplog: pytest.LogCaptureFixture) -> bool:
    """The uploader's thread gave up on the wanted checkpoint (its settle time passed)."""
    return any("no whole last.pt" in record.getMessage() for record in caplog.records)


def test_a_torn_last_pt_is_never_uploaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, save_dir = Store(), run_dir(tmp_path)
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1)[:-200])  # rank 0 is still writing it
    up = uploader(store)
    up.on_results_row(1, save_dir)
    eventually(lambda: given_up(caplog), timeout=10)
    up.close()
    assert names(store) == []


def test_a_last_pt_older_than_the_row_is_never_uploaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, save_dir = Store(), run_dir(tmp_path)
    last = save_dir / "weights" / "last.pt"
    last.write_bytes(checkpoint(0))
    stale = (save_dir / "results.csv").stat().st_mtime_ns - 10**9
    os.utime(last, ns=(stale, stale))  # the previous epoch's, written before the row
    up = uploader(store)
    up.on_results_row(1, save_dir)
    eventually(lambda: given_up(caplog), timeout=10)
    up.close()
    assert names(store) == []


def test_only_every_nth_epoch_is_taken(tmp_path: Path) -> None:
    store, save_dir = Store(), run_dir(tmp_path)
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1))
    up = uploader(store, every=2)
    assert not up.on_results_row(1, save_dir)
    assert up.on_results_row(2, save_dir)
    eventually(lambda: "last.pt" in names(store), timeout=10)
    up.close()


def test_best_pt_goes_with_last_pt_when_it_changed(tmp_path: Path) -> None:
    store, save_dir = Store(), run_dir(tmp_path)
    (save_dir / "weights" / "best.pt").write_bytes(checkpoint(1))
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1))
    up = uploader(store)
    up.on_results_row(1, save_dir)
    eventually(lambda: "last.pt" in names(store), timeout=10)
    up.close()
    assert names(store) == ["results.csv", "args.yaml", "best.pt", "last.pt"]




def test_the_follower_is_never_blocked_and_a_later_last_pt_is_taken(tmp_path: Path) -> None:
    """The bug: the follower thread waited up to a minute for last.pt (delaying progress and the failure
    report of a crashed run); now the uploader's own thread looks for it."""
    store, save_dir = Store(), run_dir(tmp_path)
    up = uploader(store)
    up.settle_seconds = 60.0
    up.on_results_row(1, save_dir)  # returns at once: last.pt is not written yet
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1))
    eventually(lambda: "last.pt" in names(store), timeout=10)
    up.close()


def test_a_torn_best_pt_is_never_uploaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The bug: only last.pt was checked; ultralytics rewrites best.pt in place right after it."""
    store, save_dir = Store(), run_dir(tmp_path)
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1, best=True))
    best = save_dir / "weights" / "best.pt"
    best.write_bytes(checkpoint(1, best=True)[: 4096])  # being written
    up = uploader(store)
    up.on_results_row(1, save_dir)
    eventually(lambda: given_up(caplog), timeout=10)
    up.close()
    assert names(store) == []


def test_a_best_epoch_waits_for_its_best_pt(tmp_path: Path) -> None:
    """last.pt says this epoch was the best: an older best.pt must not go with it."""
    store, save_dir = Store(), run_dir(tmp_path)
    best = save_dir / "weights" / "best.pt"
    best.write_bytes(checkpoint(0, best=True))
    old = (save_dir / "results.csv").stat().st_mtime_ns - 10**9
    os.utime(best, ns=(old, old))  # the previous best
    (save_dir / "weights" / "last.pt").write_bytes(checkpoint(1, best=True))
    up = uploader(store)
    up.settle_seconds = 60.0
    up.on_results_row(1, save_dir)
    newest = checkpoint(1, best=True)
    best.write_bytes(newest)  # ultralytics writes it right after last.pt
    eventually(lambda: "last.pt" in names(store), timeout=10)
    up.close()
    assert dict(store.uploaded)["best.pt"] == newest
