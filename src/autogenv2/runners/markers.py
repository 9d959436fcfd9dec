"""The launch wrapper's marker files (``.autogenv2/<token>.started``, ``.exit``) and the :class:`RunStatus`
they show: plain data, so ``autogenv2 inspect`` reads an attempt's exit code without pydantic.
Re-exported by :mod:`.base`, the Runner contract that RunStatus belongs to."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunStatus:
    """What a Runner knows about one attempt."""

    phase: str                       # "queued" | "running" | "finished" | "lost"
    exit_code: int | None = None     # the program's; negative = killed by that signal
    reason: str = ""                 # "walltime", "cancelled", "oom", "node_fail", pending reason...
    started_at: float | None = None
    ended_at: float | None = None
    scheduler_state: str = ""        # raw state word from the scheduler (PENDING, R, ...)
    extra: dict[str, Any] = field(default_factory=dict)


def marker_dir(directory: Path) -> Path:
    """Where the launch wrapper leaves its marker files."""
    return Path(directory) / ".autogenv2"


def read_markers(directory: Path, token: str) -> RunStatus | None:
    """The status the launch wrapper's marker files show, or None if it never started."""
    from ..storage import read_json  # local import: storage imports nothing from here

    markers = marker_dir(directory)
    exit_file, start_file = markers / f"{token}.exit", markers / f"{token}.started"
    if exit_file.exists():
        data = read_json(exit_file)
        return RunStatus("finished", exit_code=int(data["exit_code"]), reason=str(data.get("reason", "")),
                         started_at=data.get("started_at"), ended_at=data.get("ended_at"))
    if start_file.exists():
        data = read_json(start_file)
        return RunStatus("running", started_at=data.get("started_at"), extra={"pid": data.get("pid"),
                                                                              "host": data.get("host")})
    return None
