"""Finding the runs and captured streams in a QWalk run directory."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...errors import OptionError


def find_runs(directory: Path) -> list[str]:
    """Run ids (input file names) in ``directory``: every ``X.o`` (QWalk opens it first thing),
    else the ``qwalk X`` commands of a run_meta.json (a run that died before writing anything)."""
    directory = Path(directory)
    names = sorted(p.name[:-2] for p in directory.glob("*.o") if p.is_file())
    return names or list(dict.fromkeys(e["run_id"] for e in _meta_entries(directory)))


def only_run(directory: Path) -> str | None:
    runs = find_runs(directory)
    if len(runs) > 1:
        raise OptionError(f"QWalkReader: several QWalk runs in {directory} ({', '.join(runs)}): set run_id")
    return runs[0] if runs else None


def _meta_entries(directory: Path) -> list[dict[str, Any]]:
    """Runs recorded in a harness's run_meta.json: ``[{"command": "qwalk X", ...}]``."""
    try:
        entries = json.loads((directory / "run_meta.json").read_text())
    except (OSError, ValueError):
        return []
    found = []
    for entry in entries if isinstance(entries, list) else []:
        words = str(entry.get("command", "")).split() if isinstance(entry, dict) else []
        if any(Path(w).name.startswith("qwalk") for w in words[:-1]):
            found.append({**entry, "run_id": words[-1]})
    return found


def _tail(path: Path, limit: int = 4 << 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(path.stat().st_size - limit, 0))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def marker_exit(directory: Path) -> int | None:
    """Exit code of the last attempt from the launch wrapper's markers (``.autogenv2/<token>.exit``,
    :func:`autogenv2.runners.markers.read_markers`); None when there are none or the last one started
    (``<token>.started``) has not ended."""
    from ...runners.markers import marker_dir, read_markers

    statuses = []
    for started in marker_dir(directory).glob("*.started"):
        try:
            status = read_markers(directory, started.name[:-len(".started")])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if status is not None:
            statuses.append((float(status.started_at or 0.0), status))
    if not statuses:
        return None
    last = max(statuses, key=lambda pair: pair[0])[1]
    return last.exit_code if last.phase == "finished" else None


def find_streams(directory: Path, run_id: str) -> tuple[str, str, int | None]:
    """stdout, stderr and exit code of the last attempt: from run_meta.json if it names this run,
    else the runner's stdout.txt / stderr.txt with the exit code of the launcher's last marker
    (:func:`marker_exit`; None if unknown)."""
    directory = Path(directory)
    entries = [e for e in _meta_entries(directory) if e["run_id"] == run_id]
    if entries:
        last = entries[-1]
        code = last.get("returncode")
        return (_tail(directory / Path(str(last.get("stdout", "stdout.txt"))).name),
                _tail(directory / Path(str(last.get("stderr", "stderr.txt"))).name),
                code if isinstance(code, int) else None)
    return _tail(directory / "stdout.txt"), _tail(directory / "stderr.txt"), marker_exit(directory)
