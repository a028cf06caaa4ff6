"""The pictures people judge a detector by, as artifacts: a fixed selection of ultralytics' plots, offline.

Ultralytics draws them when ``plots=True`` (the trainer's default): during training ``labels.jpg`` and the
first ``train_batch*.jpg`` (more when mosaic closes), after the last epoch ``results.png``, and in the
validation of ``best.pt`` the PR/F1/P/R curves, both confusion matrices and ``val_batch*_labels.jpg`` /
``val_batch*_pred.jpg``. That validation writes into the run directory, or into ``<run>/final-val`` when the
trainer re-validates ``best.pt`` itself (a multi-GPU run, a retried finished run): a name found in both is
taken from ``final-val``, the newer of the two.

:func:`select_plots` keeps at most :data:`PLOTS_LIMIT` files, in the order of :data:`PLOT_NAMES` (8.4 names
and the 8.3 ones beside them), then the three lowest- and three highest-numbered training batches (the
first mosaic batches, and those after ``close_mosaic``): with ``best.pt``, ``last.pt``, ``results.csv``,
``args.yaml``, ``data.yaml`` and the exports, ``status.artifacts`` stays under its bound of 40.

Fonts: ultralytics labels its pictures with ``Arial.ttf`` (``Arial.Unicode.ttf`` for non-ASCII class names)
and downloads them when neither its settings directory nor matplotlib's font list has them.
:func:`provide_fonts` puts matplotlib's own DejaVu Sans there under both names instead, so nothing is fetched
(its glyphs cover Latin, Greek and Cyrillic, not CJK).
"""

import logging
import re
import shutil
from pathlib import Path
from typing import Final

from yolo_crd.status import ArtifactKind

log = logging.getLogger(__name__)

#: The most plots in ``status.artifacts`` (see the module docstring for the order they are kept in).
PLOTS_LIMIT: Final = 24
#: The plots kept, most telling first; each is taken when ultralytics wrote it.
PLOT_NAMES: Final = (
    "results.png", "confusion_matrix.png", "confusion_matrix_normalized.png",
    "BoxPR_curve.png", "BoxF1_curve.png", "BoxP_curve.png", "BoxR_curve.png",  # ultralytics 8.4
    "PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png",  # ultralytics 8.3
    *(f"val_batch{i}_{what}.jpg" for what in ("pred", "labels") for i in range(3)),
    "labels.jpg", "labels_correlogram.jpg",
)
#: Training batches kept from each end of the numbered ``train_batch<N>.jpg`` files.
TRAIN_BATCHES_EACH_END: Final = 3
FINAL_VALIDATION_DIR: Final = "final-val"
FONTS: Final = ("Arial.ttf", "Arial.Unicode.ttf")
_TRAIN_BATCH = re.compile(r"^train_batch(\d+)\.jpg$")
_KINDS: Final[dict[str, ArtifactKind]] = {
    ".pt": "weights", ".csv": "metrics", ".yaml": "config", ".yml": "config", ".png": "plot", ".jpg": "plot",
    ".jpeg": "plot", ".onnx": "export", ".torchscript": "export",
}


def kind_of(name: str) -> ArtifactKind | None:
    """What an artifact is, from its name: weights, metrics, config, plot or export (None: unknown suffix)."""
    return _KINDS.get(Path(name).suffix.lower())


def _train_batches(run_dir: Path) -> list[Path]:
    numbered = sorted((int(match[1]), path) for path in run_dir.glob("train_batch*.jpg")
                      if (match := _TRAIN_BATCH.match(path.name)) and path.is_file())
    if len(numbered) > 2 * TRAIN_BATCHES_EACH_END:
        numbered = numbered[:TRAIN_BATCHES_EACH_END] + numbered[-TRAIN_BATCHES_EACH_END:]
    return [path for _, path in numbered]


def select_plots(run_dir: Path) -> dict[str, Path]:
    """The run's plots to keep as artifacts, by artifact name (see the module docstring for the rule)."""
    found: dict[str, Path] = {}
    for name in PLOT_NAMES:
        for folder in (run_dir / FINAL_VALIDATION_DIR, run_dir):
            if (folder / name).is_file() and (folder / name).stat().st_size > 0:
                found[name] = folder / name
                break
    for path in _train_batches(run_dir):
        found.setdefault(path.name, path)
    return dict(list(found.items())[:PLOTS_LIMIT])


def _known_to_matplotlib(name: str) -> bool:
    from matplotlib import font_manager

    return any(Path(font.fname).name == name for font in font_manager.fontManager.ttflist)


def provide_fonts(config_dir: Path) -> None:
    """Make ultralytics' fonts resolve offline: matplotlib's DejaVu Sans as ``Arial.ttf`` and
    ``Arial.Unicode.ttf`` in ``config_dir`` (ultralytics' settings directory), unless a font of that name is
    already there or installed where matplotlib finds it (the trainer image's system fonts). Never raises:
    without fonts ultralytics falls back to PIL's default one."""
    try:
        missing = [name for name in FONTS if not (config_dir / name).is_file() and not _known_to_matplotlib(name)]
        if not missing:
            return
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        config_dir.mkdir(parents=True, exist_ok=True)
        for name in missing:
            partial = config_dir / f".{name}.part"
            shutil.copyfile(dejavu, partial)
            partial.replace(config_dir / name)  # never a half font where ultralytics looks
    except Exception:
        log.exception("could not provide fonts for ultralytics' plots; their labels use PIL's default font")
