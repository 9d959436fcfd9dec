"""A SQLite index beside the status files: ``<root>/.autogenv2/index.sqlite``.

status.json files are the truth; the index is a cache that makes ``status``, ``results`` and a
no-op ``run`` over tens of thousands of jobs take a fraction of a second. It is rebuilt from
the status files when it is missing, unreadable or marked dirty (a pass that died before
updating it), and ``--rescan`` forces that. A pass marks it dirty first and clean last.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .storage import STATUS_FILE

if TYPE_CHECKING:
    from .status import JobStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, final INTEGER,
  plan TEXT);
CREATE TABLE IF NOT EXISTS elements (
  job_id TEXT, position INTEGER, element TEXT, code TEXT, method TEXT, state TEXT, attempts INTEGER,
  energy REAL, error REAL, warmup INTEGER, error_95 REAL, reliable INTEGER, block_variance REAL,
  local_energy_variance REAL, blocks INTEGER, wall_seconds REAL,
  reason TEXT, scheduler TEXT, parameters TEXT, lineage TEXT, PRIMARY KEY (job_id, position));
"""
VIRTUAL = "SELECT job_id FROM jobs WHERE size = -1"
"""Jobs the last pass indexed from the plan alone (no status file yet: every element planned)."""
INDEX_SCHEMA = "4"
"""Bumped when the tables change; an index of another version is rebuilt from the status files.
(4: ``jobs.plan``, the hash of the job's plan entry and profiles its rows were made under; see
incremental.py.)"""
COLUMNS = ["job", "element", "code", "method", "state", "attempts", "energy", "error", "warmup", "error_95",
           "reliable", "block_variance", "local_energy_variance", "blocks", "wall_seconds", "reason",
           "scheduler", "parameters", "lineage"]
LOCAL_ENERGY_VARIANCE_CODES = ("qwalk",)
"""Codes whose Reader's ``variance`` is that of the local energy (QWalk's log); others give the
variance of the block means (PyQMC, toy)."""


def variances(code: str, result: dict[str, Any]) -> tuple[float | None, float | None]:
    """(variance of the block means, variance of the local energy); None where it does not apply."""
    block, local = result.get("block_variance"), result.get("local_energy_variance")
    if block is None and local is None:
        if code in LOCAL_ENERGY_VARIANCE_CODES:
            local = result.get("variance")
        else:
            block = result.get("variance")
    return _num(block), _num(local)


def quality(result: dict[str, Any]) -> tuple[int | None, float | None, bool | None]:
    """The warm-up used, the 95 % half-width and whether the error bar is reliable (errorbar.py)."""
    warmup, reliable = result.get("warmup"), result.get("reliable")
    return (warmup if isinstance(warmup, int) else None, _num(result.get("error_95")),
            reliable if isinstance(reliable, bool) else None)


def element_rows(status: JobStatus) -> list[tuple[Any, ...]]:
    """The index rows of one job (one per element)."""
    rows: list[tuple[Any, ...]] = []
    for position, element in enumerate(status.elements):
        if not element.attempts and not element.result and not element.lineage:  # planned: most of a new plan
            rows.append((status.job_id, position, element.name, element.code, element.method,
                         element.state.value, 0, *NOTHING, element.reason, "",
                         _json(element.spec.get("options", {})), "{}"))
            continue
        result, last = element.result, (element.attempts[-1] if element.attempts else None)
        seconds = [a.seconds for a in element.attempts if a.seconds is not None]
        scheduler = ""
        if last is not None and element.state.value == "running":
            scheduler = " ".join(x for x in (last.phase, last.scheduler_state, last.reason) if x)
        lineage = {name: f"{src.get('element')}#{src.get('attempt')}:{str(src.get('sha256', ''))[:12]}"
                   for name, src in element.lineage.items()}
        blocks = result.get("blocks", result.get("iterations"))
        rows.append((status.job_id, position, element.name, element.code, element.method, element.state.value,
                     len(element.attempts), _num(result.get("energy")), _num(result.get("error")),
                     *quality(result), *variances(element.code, result),
                     blocks if isinstance(blocks, int) else None,
                     round(sum(seconds), 3) if seconds else None, element.reason, scheduler,
                     _json(element.spec.get("options", {})), _json(lineage)))
    return rows


NOTHING = (None,) * 9
"""energy … wall_seconds of an element with no attempts and no result."""


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True) if value else "{}"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else None


class Index:
    """The cache of one root. Use as a context manager (one connection, one transaction per write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / ".autogenv2" / "index.sqlite"
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:  # corrupt cache: it is only a cache
            self.path.unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.executescript(SCHEMA)
        found = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if found is None or found[0] != INDEX_SCHEMA:  # an older layout: rebuild from the status files
            with db:
                db.executescript("DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS elements; "
                                 "DELETE FROM meta;")
            db.executescript(SCHEMA)
            with db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (INDEX_SCHEMA,))
        return db

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, **values: str) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def update(self, statuses: Iterable[tuple[JobStatus, bool]], every_job: bool = False,
               keys: dict[str, str] | None = None) -> None:
        """Store the rows of these jobs (after a pass wrote their status files).

        A job whose status file does not exist yet (planned, waiting for a runner slot) is stored
        with size -1. ``every_job``: these are all the jobs the pass loaded, so such rows of other jobs
        go (a job it left alone has a status file). ``keys``: the hash of each job's plan entry
        (:func:`autogenv2.plan.job_key`); a job without one is stored with "" (loaded by the next pass).
        """
        known = {row[0]: row[1:] for row in
                 self.db.execute("SELECT job_id, mtime_ns, size, final, plan FROM jobs")}
        keys = keys or {}
        with self.db:
            if every_job:
                self.db.execute(f"DELETE FROM elements WHERE job_id IN ({VIRTUAL})")
                self.db.execute("DELETE FROM jobs WHERE size = -1")
            jobs, rows, rekeyed = [], [], []
            for status, final in statuses:
                key = keys.get(status.job_id, "")
                try:
                    stat = os.stat(os.path.join(self.root, status.job_id, STATUS_FILE))
                    found = (stat.st_mtime_ns, stat.st_size, int(final))
                except FileNotFoundError:
                    found = (0, -1, int(final))
                old = known.get(status.job_id)
                if found[1] >= 0 and old is not None and old[:3] == found:
                    if old[3] != key:  # the file the rows were made from, untouched: the rows are current
                        rekeyed.append((key, status.job_id))
                    continue
                jobs.append((status.job_id, *found, key))
                rows += element_rows(status)
            self.db.executemany("DELETE FROM elements WHERE job_id=?", [(job[0],) for job in jobs])
            self.db.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)", jobs)
            self.db.executemany("UPDATE jobs SET plan=? WHERE job_id=?", rekeyed)
            self.db.executemany(f"INSERT INTO elements VALUES ({','.join('?' * (len(COLUMNS) + 1))})", rows)

    def rescan(self) -> list[str]:
        """Bring the index in line with the status files on disk; returns unreadable-file messages."""
        known = {row[0]: (row[1], row[2]) for row in
                 self.db.execute("SELECT job_id, mtime_ns, size FROM jobs WHERE size >= 0")}  # not planned

        seen, changed, errors = set(), [], []
        with os.scandir(self.root) as entries:
            for entry in entries:
                path = os.path.join(entry.path, STATUS_FILE)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                seen.add(entry.name)
                if known.get(entry.name) != (stat.st_mtime_ns, stat.st_size):
                    changed.append(entry.name)
        from .status import JobStatus

        statuses = []
        for job_id in changed:
            try:
                status = JobStatus.load(self.root / job_id)
            except Exception as exc:  # noqa: BLE001 - reported, never fatal for the others
                errors.append(str(exc))
                continue
            if status is not None:
                statuses.append((status, status_is_final(status)))
        self.update(statuses)
        with self.db:
            for job_id in set(known) - seen:
                self.db.execute("DELETE FROM jobs WHERE job_id=?", (job_id,))
                self.db.execute("DELETE FROM elements WHERE job_id=?", (job_id,))
        self.set_meta(dirty="0")
        return errors

    def rows(self, only: Iterable[str] | None = None, columns: list[str] | None = None,
             decode: bool = True) -> list[dict[str, Any]]:
        """Element rows as dicts, in job then step order (only ``columns`` when given: faster).

        ``decode=False`` leaves ``parameters`` and ``lineage`` as their JSON text (for CSV).
        """
        columns = columns or COLUMNS
        names = ", ".join("job_id" if c == "job" else c for c in columns)
        query = f"SELECT {names} FROM elements ORDER BY job_id, position"
        wanted = set(only) if only is not None else None
        decoded = [c for c in ("parameters", "lineage") if c in columns] if decode else []
        out = []
        for row in self.db.execute(query):
            if wanted is not None and row[0] not in wanted:
                continue
            item = dict(zip(columns, row, strict=True))
            for key in decoded:
                item[key] = json.loads(item[key])
            if decode and item.get("reliable") is not None:  # SQLite keeps a bool as 0/1
                item["reliable"] = bool(item["reliable"])
            out.append(item)
        return out

    def all_final(self) -> bool:
        """Every indexed job is final and its status file is exactly as indexed (no one touched it)."""
        rows = self.db.execute("SELECT job_id, mtime_ns, size, final FROM jobs").fetchall()
        if not rows or not all(row[3] for row in rows):
            return False
        for job_id, mtime_ns, size, _final in rows:
            try:
                stat = os.stat(os.path.join(self.root, job_id, STATUS_FILE))
            except OSError:
                return False
            if (stat.st_mtime_ns, stat.st_size) != (mtime_ns, size):
                return False
        return True


def status_is_final(status: JobStatus) -> bool:
    """Conservative finality from the status alone: all done, or failed with nothing else pending.

    (A pass knows better, from the plan's ``after`` links; this is only used when rescanning.)
    """
    states = {e.state.value for e in status.elements}
    stopped = {"failed", "blocked"}
    return states <= {"done"} or (bool(states & stopped) and states <= {"done"} | stopped)


def open_synced(root: Path, rescan: bool = False) -> tuple[Index, list[str]]:
    """The root's index, rescanned when asked, new, or left dirty by an interrupted pass."""
    index = Index(root)
    errors: list[str] = []
    if rescan or index.meta("dirty") != "0":
        errors = index.rescan()
    return index, errors
