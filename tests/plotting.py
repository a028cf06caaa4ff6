"""Plots in the test trainings of one module: import :func:`plots_drawn` into a module that checks plots.

The test session turns ultralytics' plots off for real trainings (tests/conftest.py: they cost seconds each
and most tests never look at them); a module-scoped autouse fixture turns them back on before any of the
module's own fixtures start a training, and off again after it.
"""

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def plots_drawn() -> Iterator[None]:
    """YOLO_TRAINER_PLOTS=true for every training the importing module runs (in process or as a subprocess)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YOLO_TRAINER_PLOTS", "true")
        yield
