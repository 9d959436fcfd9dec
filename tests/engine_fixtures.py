"""Fixtures of the in-process engine tests, loaded with ``pytest_plugins = ("engine_fixtures",)``."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from autogenv2.profiles import MachineProfile
from autogenv2.runners.fake import FakeRunner


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    """One fake runner behind every machine profile (the pool makes runners from profiles on each pass)."""
    runner = FakeRunner()
    monkeypatch.setattr(MachineProfile, "make_runner", lambda self: runner)
    return runner


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory in memory (/dev/shm) when there is one, else ``tmp_path``.

    Status files and the index are synced to disk on every write; on this loaded shared disk that made one
    pass of two jobs take 0.2 s. In memory a pass takes milliseconds, which is the point of these tests.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and shutil.disk_usage(shm).free > 1 << 28):
        yield tmp_path
        return
    where = Path(tempfile.mkdtemp(prefix="ag2-engine-", dir=shm))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)
