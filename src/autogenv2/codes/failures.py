"""Helpers shared by Readers for locating a failure's own words in a run's output."""
from __future__ import annotations

from pathlib import Path

_TAIL_BYTES = 65536


def tail_lines(path: Path, count: int = 40) -> list[str]:
    """The last ``count`` lines of a (possibly huge or missing) text file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-count:]


def last_error_line(path: Path) -> str:
    """The last line that looks like an error (a Python exception or 'Error ...'), else ''."""
    for line in reversed(tail_lines(path)):
        stripped = line.strip()
        head = stripped.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) or stripped.startswith(("Error", "Killed")):
            return stripped[:300]
    return ""
