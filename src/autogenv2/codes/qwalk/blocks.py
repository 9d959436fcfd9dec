"""Block series of a QWalk run directory, for the report's block traces (as PyQMC's ``read_blocks``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .rundir import find_runs
from .verdict import load_run


def read_blocks(directory: Path, method: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Block energies and weights (DMC ``totweight``; None for VMC) of the last ``method`` section.

    Every attempt appended to the ``.log`` is merged, as the Reader merges them. Raises
    ``FileNotFoundError`` when the directory holds no run with such blocks.
    """
    for run_id in reversed(find_runs(Path(directory))):
        run = load_run(Path(directory), run_id, variance=False)
        sections = [i for i, kind in enumerate(run.kinds) if kind.lower() == method.lower()]
        series = run.log.series.get(run.label(sections[-1])) if sections else None
        if series is not None and series.nblocks:
            weights = series.totweight if method.lower() == "dmc" else None
            return np.asarray(series.energy, dtype=float), weights
    raise FileNotFoundError(f"no {method} blocks in a QWalk run in {directory}")
