"""Atomic, schema-versioned JSON files. No pickle anywhere.

A write goes to ``name.tmp-<pid>`` and is then ``os.replace``d over the target, so a killed
process leaves either the old or the new file (the page cache outlives the process). A
*durable* write also fsyncs the file before the rename and the directory after it, so an OS
crash or power loss cannot undo it; a pass writes status files non-durably and makes them all
durable at once at its end with :func:`sync_pending` (see docs/architecture.md, "Durability").
A file that does not parse is moved aside (never overwritten) and reported with recovery hints.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .errors import StatusError

STATUS_FILE = "status.json"
"""Each job's status file, in ``<root>/<jobid>/``."""

SCHEMA_VERSION = 4
"""Version of status.json. Changelog: 1 — first version; 2 — elements record ``lineage``;
3 — jobs record their plan ``variables``; 4 — elements record the ``reader`` settings of health fixes."""


def migrate_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 added each element's ``lineage`` (unknown for runs made before it)."""
    for element in data.get("elements", []):
        if isinstance(element, dict):
            element.setdefault("lineage", {})
    return data


def migrate_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 added the job's ``variables`` (none known for older jobs)."""
    data.setdefault("variables", {})
    return data


def migrate_v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    """Version 4 stores the Reader settings of health fixes in each element's ``reader``; older files
    have them only in their ``health-fix`` events, which are folded into it here (oldest first)."""
    for element in data.get("elements", []):
        if isinstance(element, dict):
            reader: dict[str, Any] = {}
            for event in element.get("events") or []:
                if isinstance(event, dict) and event.get("event") == "health-fix":
                    reader.update(event.get("reader") or {})
            element.setdefault("reader", reader)
    return data


MIGRATIONS: dict[int, Any] = {1: migrate_v1_to_v2, 2: migrate_v2_to_v3, 3: migrate_v3_to_v4}
"""``MIGRATIONS[n]`` turns a version-n dict into version n+1."""


_PENDING: set[str] = set()
"""Directories holding renames not yet made durable (see :func:`sync_pending`)."""


def write_json_atomic(path: Path, data: dict[str, Any], durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix.

    ``durable=False`` skips both fsyncs: the write survives a killed process but not a power loss
    until :func:`sync_pending` (or the kernel's own write-back) has run.
    """
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False, allow_nan=False), durable)


def write_text_atomic(path: Path, text: str, durable: bool = True) -> None:
    """:func:`write_json_atomic` for text already encoded (status files: pydantic's own encoder)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: status files are never world-writable
        view = memoryview(text.encode("utf-8"))
        while view:  # a regular file takes it all in one write(2) but for a full disk or a signal
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
    else:
        _PENDING.add(str(path.parent))


def sync_pending() -> int:
    """Make every non-durable write of this process durable; returns how many directories it covered.

    One ``syncfs(2)`` per file system involved (``os.sync()`` where syncfs is unavailable) instead of
    two fsyncs per file: the same guarantee at the end of a pass for a fraction of the cost.
    """
    pending = sorted(_PENDING)
    _PENDING.clear()
    devices: dict[int, str] = {}
    for directory in pending:
        try:
            devices.setdefault(os.stat(directory).st_dev, directory)
        except OSError:
            continue
    for directory in devices.values():
        _syncfs(directory)
    return len(pending)


def _syncfs(directory: str) -> None:
    """Flush the file system holding ``directory`` (Linux ``syncfs``; elsewhere ``os.sync``)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError, ImportError):
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a corrupt file is moved aside and reported, never silently replaced."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("top level is not a JSON object")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        aside = quarantine(path)
        raise StatusError(
            f"{path}: corrupt JSON ({exc}); moved it to {aside.name}. "
            f"Inspect it, then either restore it with `mv {aside} {path}` or delete it to let "
            "autogenv2 rebuild the job's status from its run directories."
        ) from None
    return data


def quarantine(path: Path) -> Path:
    """Rename a bad file to ``<name>.corrupt-<timestamp>`` and return the new path."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    os.replace(path, aside)
    return aside


def check_schema(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Migrate ``data`` to :data:`SCHEMA_VERSION`; refuse files from a newer autogenv2."""
    version = data.get("schema_version")
    hint = f"move {path} aside to let autogenv2 start the job afresh"
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StatusError(f"{path}: no valid 'schema_version' (got {version!r}); "
                          f"not an autogenv2 status file; {hint}")
    if version > SCHEMA_VERSION:
        raise StatusError(
            f"{path}: schema_version {version} is newer than this autogenv2 understands "
            f"({SCHEMA_VERSION}); upgrade autogenv2 to read it"
        )
    while version < SCHEMA_VERSION:
        try:
            data = MIGRATIONS[version](data)
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            raise StatusError(f"{path}: cannot migrate from schema {version} ({exc}); {hint}") from None
        version += 1
        data["schema_version"] = version
    return data
