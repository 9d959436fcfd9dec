"""The root's lock and the plan file's fingerprint, each taken once per process and pass.

Light on purpose (standard library, ``filelock`` on first use): the no-op fast path of ``run``
(:mod:`autogenv2.fastpath`) reads the plan through here before anything heavy is imported.

* :func:`read_plan_file` reads and parses a plan file once per process (again only when the file
  changed on disk) and gives its root and fingerprint; ``plan.load_plan`` expands the same table.
* :func:`root_lock` holds ``<root>/.autogenv2.lock``; nested holds of one root in one process share
  the one acquisition, so the fast path can hand its lock to the full pass. A root busy for longer
  than ``wait`` is one :class:`~autogenv2.errors.LockedError` line, never a traceback.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LockedError

if TYPE_CHECKING:
    from filelock import FileLock

LOCK_FILE = ".autogenv2.lock"

COUNTS = {"plan_reads": 0, "lock_acquisitions": 0}
"""How often this process parsed a plan file and really acquired a root lock (tests hold these to one)."""


class PlanFile(NamedTuple):
    """A plan file as read once: its parsed table (or why it has none), root and fingerprint.

    A NamedTuple, not a dataclass: ``dataclasses`` (and ``inspect``) would cost the quick commands ~10 ms.
    """

    path: Path
    root: Path
    fingerprint: str
    """Hash of the plan's bytes, its machine profile file and its root: equal means nothing changed."""
    raw: dict[str, Any]
    problem: str = ""
    """One line naming the file when it could not be read or parsed (``raw`` is then empty)."""


_READ: dict[tuple[str, str], tuple[tuple[tuple[int, int, int], ...], PlanFile]] = {}
_HELD: dict[str, tuple[FileLock, int]] = {}


def read_plan_file(path: Path | str, root: Path | None = None) -> PlanFile:
    """The plan file at ``path``, parsed once per process unless it or its machine profile file changed."""
    path = Path(path)
    key = (str(path.absolute()), str(root))
    cached = _READ.get(key)
    if cached is not None and cached[0] == _stamps(path, cached[1].raw) and cached[0][0][1] >= 0:
        return cached[1]
    data, raw, problem = _parse(path)
    COUNTS["plan_reads"] += 1
    digest = hashlib.blake2b(data, digest_size=16)
    root_dir = Path(root) if root is not None else path.parent / str(raw.get("root", "."))
    machines = raw.get("machines")
    if isinstance(machines, str):
        try:
            digest.update((path.parent / machines).read_bytes())
        except (OSError, ValueError):
            digest.update(b"missing machines file")
    digest.update(str(root_dir).encode())
    found = PlanFile(path, root_dir, digest.hexdigest(), raw, problem)
    _READ[key] = (_stamps(path, raw), found)
    return found


def _stamps(path: Path, raw: dict[str, Any]) -> tuple[tuple[int, int, int], ...]:
    """(modification time, size, inode) of the plan file and of its machine profile file, if it names one."""
    files = [path] + ([path.parent / raw["machines"]] if isinstance(raw.get("machines"), str) else [])
    stamps = []
    for file in files:
        try:
            info = file.stat()
            stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        except (OSError, ValueError):
            stamps.append((0, -1, 0))
    return tuple(stamps)


def _parse(path: Path) -> tuple[bytes, dict[str, Any], str]:
    """(bytes, top-level table, problem): the problem names the file, and the table is then empty."""
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        return b"", {}, f"{path}: cannot read plan file ({exc.strerror})"
    except UnicodeDecodeError as exc:
        return data, {}, f"{path}: not UTF-8 text (byte {exc.start}); a plan file is TOML or JSON text"
    try:
        raw = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        return data, {}, f"{path}: not valid {kind}: {exc}"
    except RecursionError:
        return data, {}, f"{path}: nested too deeply to be a plan"
    if not isinstance(raw, dict):
        return data, {}, f"{path}: the top level must be a table (JSON object)"
    return data, raw, ""


def plan_fingerprint(path: Path, root: Path | None = None) -> tuple[Path, str]:
    """(root directory, fingerprint) of a plan file without expanding the plan."""
    found = read_plan_file(path, root)
    return found.root, found.fingerprint


def locked_error(root: Path) -> LockedError:
    return LockedError(f"another `autogenv2 run` is working on {root} (lock {root / LOCK_FILE}); "
                       "wait for it to finish, or pass --wait SECONDS")


@contextmanager
def root_lock(root: Path, wait: float = 0) -> Iterator[None]:
    """Hold the root's lock (waiting up to ``wait`` seconds); held already by this process: share it."""
    key = str(Path(root).absolute())
    if key in _HELD:
        held, depth = _HELD[key]
        _HELD[key] = (held, depth + 1)
        try:
            yield
        finally:
            _HELD[key] = (held, _HELD[key][1] - 1)
        return
    from filelock import FileLock, Timeout

    Path(root).mkdir(mode=0o755, parents=True, exist_ok=True)
    file_lock = FileLock(str(Path(root) / LOCK_FILE), mode=0o644)
    try:
        file_lock.acquire(timeout=wait)
    except Timeout:
        raise locked_error(Path(root)) from None
    COUNTS["lock_acquisitions"] += 1
    _HELD[key] = (file_lock, 1)
    try:
        yield
    finally:
        del _HELD[key]
        file_lock.release()
