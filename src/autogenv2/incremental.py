"""Which jobs a pass over a plan file must load: those whose plan entry, profiles or status changed.

A pass over 100,000 finished jobs after an edit of a few of them should cost what changed. The
plan's job entries are merged from the template (scans and ``foreach`` expanded) without pydantic,
and each is hashed together with the machine profile file (:func:`autogenv2.plan.job_key`). The
index keeps, per job, the hash its rows were made under (``jobs.plan``) beside the status file's
(mtime, size) and whether the job was final. A job is left alone when all of these hold:

* the index is clean (the last pass finished) and the pass does not ``--retry-failed``;
* its hash equals the indexed one (same merged entry, same profiles);
* the index says it is final and its status file has the indexed (mtime, size).

Every other job is validated and loaded as before, so the rules of :mod:`autogenv2.planchange` apply
to it. The jobs left alone are counted from their index rows and their rows stay as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PlanError
from .index import Index
from .lock import PlanFile
from .plan import Plan, PlanHead, Step, job_key, merge_job, validate_job
from .storage import STATUS_FILE


@dataclass
class Selection:
    """The plan restricted to the jobs a pass loads, the ids it leaves alone, and every loaded job's hash."""

    plan: Plan
    kept: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)


def indexed_jobs(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """job id → (mtime_ns, size, final, plan hash) of a clean index; empty when there is none to trust."""
    if not (root / ".autogenv2" / "index.sqlite").is_file():
        return {}
    with Index(root) as index:
        if index.meta("dirty") != "0":
            return {}
        return {row[0]: row[1:] for row in
                index.db.execute("SELECT job_id, mtime_ns, size, final, plan FROM jobs WHERE final = 1")}


def select(found: PlanFile, root: Path | None = None, retry_failed: bool = False) -> Selection:
    """Merge every job of the plan file, then validate only those a pass must load.

    ``root`` overrides the plan's own (as in ``load_plan``). Raises PlanError for a bad plan, naming it;
    duplicate job ids are refused across all jobs, loaded or not.
    """
    try:
        return _select(found, root, retry_failed)
    except RecursionError:
        raise PlanError(f"{found.path}: nested too deeply to be a plan") from None


def _select(found: PlanFile, root: Path | None, retry_failed: bool) -> Selection:
    head = PlanHead.of(found.raw, source=found.path, root=root)
    profiles = head.profiles_digest()
    known = {} if retry_failed else indexed_jobs(head.data["root"])
    directory = str(head.data["root"])
    seen: set[str] = set()
    kept: set[str] = set()
    todo: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    cache: dict[tuple[int, str], list[Any]] = {}
    for number, entry in enumerate(head.entries):
        merged = merge_job(entry, head.template, head.prefix, number, cache)
        job_id = merged["id"]
        if job_id in seen:
            raise PlanError(f"{head.prefix}duplicate job id {job_id!r}")
        seen.add(job_id)
        key = job_key(merged, profiles)
        row = known.get(job_id)
        if key is not None and row is not None and row[3] == key and _untouched(directory, job_id, row):
            kept.add(job_id)
            continue
        todo.append(merged)
        if key is not None:
            keys[job_id] = key
    made: dict[str, Step] = {}
    plan = head.plan([validate_job(merged, made) for merged in todo])
    return Selection(plan, kept, keys)


def _untouched(directory: str, job_id: str, row: tuple[int, int, int, str]) -> bool:
    """The job's status file is the one its index rows were made from."""
    try:
        stat = os.stat(os.path.join(directory, job_id, STATUS_FILE))
    except OSError:
        return False
    return row[1] >= 0 and (stat.st_mtime_ns, stat.st_size) == (row[0], row[1])


def count_kept(index: Index, kept: set[str]) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Element counts by state, and the failed or blocked elements, of the jobs a pass left alone."""
    states: dict[str, int] = {}
    failed: list[tuple[str, str, str]] = []
    for job_id, element, state, reason in index.db.execute(
            "SELECT job_id, element, state, reason FROM elements ORDER BY job_id, position"):
        if job_id not in kept:
            continue
        states[state] = states.get(state, 0) + 1
        if state in ("failed", "blocked"):
            failed.append((f"{job_id}/{element}", state, reason))
    return states, failed
