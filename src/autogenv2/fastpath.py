"""The no-op fast path of ``run`` and a plain ``status``, importing nothing heavy.

At 10,000 jobs, expanding and validating a plan costs seconds; when the plan file and machine
profiles are byte-identical to those of the last complete pass, the index is clean, every job
was final and no status file changed since, nothing can happen — so nothing is loaded. The plan
file is read and the root locked through :mod:`autogenv2.lock`, once for the whole process.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .index import Index, open_synced
from .lock import PlanFile, plan_fingerprint


def has_index(root: Path) -> bool:
    return (root / ".autogenv2" / "index.sqlite").is_file()


def noop_counts(plan: PlanFile) -> dict[str, int] | None:
    """Element counts by state if a pass over ``plan`` would do nothing, else None.

    The caller holds the root's lock (:func:`autogenv2.lock.root_lock`).
    """
    if plan.problem or not has_index(plan.root):
        return None
    with Index(plan.root) as index:
        if index.meta("dirty") == "0" and index.meta("plan") == plan.fingerprint and index.all_final():
            return dict(index.db.execute("SELECT state, COUNT(*) FROM elements GROUP BY state").fetchall())
    return None


def plan_is_known(root: Path, fingerprint: str) -> bool:
    """True when the last pass over ``root`` ran this very plan (same bytes) without errors."""
    if not has_index(root):
        return False
    with Index(root) as index:
        return index.meta("plan") == fingerprint


def failed_rows(root: Path) -> list[tuple[str, str, str]]:
    """(``job/element``, state, reason) of every failed or blocked element in the root's index."""
    with Index(root) as index:
        found = index.db.execute("SELECT job_id, element, state, reason FROM elements WHERE state IN "
                                 "('failed', 'blocked') ORDER BY job_id, position").fetchall()
    return [(f"{job}/{element}", state, reason) for job, element, state, reason in found]


def failure_line(failed: list[tuple[str, str, str]], shown: int = 3) -> str:
    """One line naming the failed elements with their reasons, then the blocked ones."""
    broken = [(name, reason) for name, state, reason in failed if state == "failed"]
    blocked = [name for name, state, _ in failed if state == "blocked"]
    parts = [f"{name}: {reason}" for name, reason in broken[:shown]]
    if len(broken) > shown:
        parts.append(f"and {len(broken) - shown} more")
    line = f"failed: {len(broken)} element{'s' * (len(broken) != 1)} ({'; '.join(parts)})" if broken else ""
    if blocked:
        names = ", ".join(blocked[:shown])
        names += f" and {len(blocked) - shown} more" if len(blocked) > shown else ""
        line += f"; blocked by them: {names}" if line else f"blocked: {names}"
    return line + " (`autogenv2 status` for details)"


def plain_status(target: Path, rescan: bool, show_all: bool) -> int:
    """``autogenv2 status`` for large ensembles and scripts: counts, then the rows needing attention."""
    root = target if target.is_dir() else plan_fingerprint(target)[0]
    if not root.is_dir():
        print(f"error: {target}: no such plan file or root directory", file=sys.stderr)
        return 1
    index, errors = open_synced(root, rescan)
    with index:
        counts = index.db.execute(
            "SELECT state, COUNT(*) FROM elements GROUP BY state ORDER BY state").fetchall()
        where = "" if show_all else "WHERE state != 'done'"
        rows = index.db.execute(
            "SELECT job_id, element, state, attempts, energy, error, scheduler, reason FROM elements "
            f"{where} ORDER BY job_id, position").fetchall()
    out = [f"unreadable: {error}" for error in errors]
    for job, element, state, attempts, energy, error, scheduler, reason in rows:
        value = "" if energy is None else f"{energy:.6f}"
        value += "" if energy is None or error is None else f" ± {error:.6f}"
        note = " ".join(x for x in (scheduler, reason) if x)
        out.append(f"{job:<24} {element:<16} {state:<10} {attempts:>3}  {value:<26} {note}")
    total = sum(n for _, n in counts)
    out.append(f"{root}: {total} elements: " + ", ".join(f"{n} {state}" for state, n in counts)
               + ("" if show_all else " (only those not done are listed; --all lists every element)"))
    sys.stdout.write("\n".join(out) + "\n")
    return 0
