"""Results: one row per job element, from the status files under a root."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from .errors import AutogenError
from .status import STATUS_FILE, JobStatus

COLUMNS = ["job", "element", "code", "method", "state", "energy", "error", "variance", "blocks", "attempts",
           "wall_seconds", "reason", "parameters", "lineage"]


def iter_status(root: Path) -> Iterator[tuple[JobStatus | None, str]]:
    """(status, error message) for every job directory under ``root``, sorted by id."""
    root = Path(root)
    if not root.is_dir():
        raise AutogenError(f"{root}: no such directory (has `autogenv2 run` been started?)")
    for path in sorted(root.glob(f"*/{STATUS_FILE}")):
        try:
            yield JobStatus.load(path.parent), ""
        except AutogenError as exc:
            yield None, str(exc)


def rows(root: Path) -> list[dict[str, Any]]:
    """Plain dict rows (the JSON/CSV/table form of the results)."""
    table = []
    for status, _error in iter_status(root):
        if status is None:
            continue
        for element in status.elements:
            result = element.result
            seconds = [a.seconds for a in element.attempts if a.seconds is not None]
            table.append({
                "job": status.job_id, "element": element.name, "code": element.code, "method": element.method,
                "state": element.state.value, "energy": result.get("energy"), "error": result.get("error"),
                "variance": result.get("variance"), "blocks": result.get("blocks", result.get("iterations")),
                "attempts": len(element.attempts), "wall_seconds": round(sum(seconds), 3) if seconds else None,
                "reason": element.reason, "parameters": element.spec.get("options", {}),
                "lineage": {name: f"{src['element']}#{src['attempt']}:{str(src['sha256'])[:12]}"
                            for name, src in element.lineage.items()},
            })
    return table


def results(root: Path | str) -> "Any":
    """All results under ``root`` as a pandas DataFrame (one row per job element)."""
    import pandas as pd

    return pd.DataFrame(rows(Path(root)), columns=COLUMNS)
