"""Results: one row per job element, served from the root's index (rebuilt from status files)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AutogenError
from .index import open_synced
from .storage import STATUS_FILE

if TYPE_CHECKING:
    from .status import JobStatus

COLUMNS = ["job", "element", "code", "method", "state", "energy", "error", "warmup", "error_95", "reliable",
           "block_variance", "local_energy_variance", "blocks", "attempts", "wall_seconds", "reason",
           "parameters", "lineage"]
"""``warmup``: the blocks actually dropped (after any health fix); ``error_95``: half-width of the 95 %
interval; ``reliable``: whether the error bar can be trusted (errorbar.py). ``block_variance``: variance
of the block means (PyQMC, toy); ``local_energy_variance``: variance of the local energy (QWalk). Each
is empty where it does not apply; so is ``error`` for an SCF."""


def rows(root: Path, rescan: bool = False, only: list[str] | None = None,
         decode: bool = True) -> list[dict[str, Any]]:
    """Plain dict rows (the JSON/CSV/table form of the results), in job then step order."""
    return rows_and_errors(root, rescan, only, decode=decode)[0]


def rows_and_errors(root: Path, rescan: bool = False, only: list[str] | None = None,
                    columns: list[str] | None = None,
                    decode: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows plus the messages of status files that could not be read."""
    root = Path(root)
    if not root.is_dir():
        raise AutogenError(f"{root}: no such directory (has `autogenv2 run` been started?)")
    index, errors = open_synced(root, rescan)
    with index:
        return index.rows(only, columns, decode), errors


def csv_text(table: list[dict[str, Any]]) -> str:
    """Undecoded rows (``rows(..., decode=False)``) as CSV with the columns of :func:`results`."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([row[key] for key in COLUMNS] for row in table)
    return buffer.getvalue()


def results(root: Path | str) -> Any:
    """All results under ``root`` as a pandas DataFrame (one row per job element)."""
    import pandas as pd

    table = [{key: row[key] for key in COLUMNS} for row in rows(Path(root))]
    return pd.DataFrame(table, columns=COLUMNS)


def iter_status(root: Path) -> Iterator[tuple[JobStatus | None, str]]:
    """(status, error message) for every job directory under ``root``, sorted by id (full detail)."""
    root = Path(root)
    if not root.is_dir():
        raise AutogenError(f"{root}: no such directory (has `autogenv2 run` been started?)")
    from .status import JobStatus

    for path in sorted(root.glob(f"*/{STATUS_FILE}")):
        try:
            yield JobStatus.load(path.parent), ""
        except AutogenError as exc:
            yield None, str(exc)
