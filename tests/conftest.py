"""Shared fixtures: a tiny real H2 ensemble (PySCF + PyQMC) run once per test session."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from autogenv2.profiles import MachineProfile
from autogenv2.runners.fake import FakeRunner

REPO = Path(__file__).resolve().parents[1]
QWALK_CASES = REPO / "tests" / "data" / "qwalk" / "cases"
"""Recorded real QWalk runs (test data kept in the repository; see its INDEX.md)."""

H2_SCF_STEP = """
root = "runs"
[[steps]]
name = "scf"
code = "pyscf"
method = "rhf"
basis = "cc-pvdz"
unit = "bohr"
atom = "H 0 0 0; H 0 0 1.4"
"""
"""The plan's head: RHF of H2 at R = 1.4 bohr (cc-pVDZ), as step "scf"."""

TINY_PLAN = H2_SCF_STEP + """[[steps]]
name = "opt"
code = "pyqmc"
method = "optimize"
nconfig = 100
max_iterations = 2
tolerance_sigmas = 100.0
seed = 3
[[steps]]
name = "vmc"
code = "pyqmc"
method = "vmc"
nconfig = 100
nblocks = 12
warmup = 2
seed = 4
[[steps]]
name = "dmc"
code = "pyqmc"
method = "dmc"
nconfig = 100
tstep = 0.02
nblocks = 20
warmup = 5
seed = 5
[[jobs]]
id = "h2"
"""


def autogenv2(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "autogenv2", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


@functools.cache
def engine_startup() -> float:
    """Seconds a fresh interpreter takes to import PySCF and PyQMC here and now (measured once)."""
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import h5py, pyscf, pyqmc, pyscf.scf"], check=True, timeout=600)
    return time.perf_counter() - begin


def loaded_walltime(seconds: float) -> tuple[float, float]:
    """A test walltime of at least ``seconds`` that leaves room for the measured start-up, and the
    factor by which it grew (scale the work by it so the run still overruns the walltime)."""
    walltime = max(seconds, round(seconds / 5 + 3 * engine_startup(), 1))
    return walltime, walltime / seconds


H2_RHF = {"atom": "H 0 0 0; H 0 0 1.4", "unit": "bohr", "basis": "cc-pvdz"}
"""H2 at R = 1.4 bohr, as the real PyQMC tests build it."""


def run_pyqmc(directory: Path, chkfile: Path, writer: Any, timeout: float = 900) -> None:
    """Write a PyQMC Writer's run into ``directory`` and run it to its end (exit 0 asserted)."""
    directory.mkdir(exist_ok=True)
    writer.write(directory, {"chkfile": chkfile})
    proc = subprocess.run([sys.executable, "run.py"], cwd=directory, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def chkfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PySCF RHF chkfile of :data:`H2_RHF`, made once per session."""
    from pyscf import gto, scf
    path = tmp_path_factory.mktemp("scf") / "mf.chk"
    mf = scf.RHF(gto.M(**H2_RHF, verbose=0))
    mf.chkfile = str(path)
    mf.kernel()
    return path


@pytest.fixture(scope="session")
def finished_h2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding plan.toml and runs/ with the tiny H2 ensemble run to completion."""
    base = tmp_path_factory.mktemp("h2done")
    (base / "plan.toml").write_text(TINY_PLAN)
    proc = autogenv2("run", str(base / "plan.toml"), "--watch", "--interval", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return base


@pytest.fixture
def h2_copy(finished_h2: Path, tmp_path: Path) -> Path:
    """A private copy of the finished ensemble, free to modify."""
    target = tmp_path / "h2"
    shutil.copytree(finished_h2, target)
    return target


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """With AUTOGENV2_REQUIRE_ALL=1 (.ci/run provides QWalk, SLURM and PBS) a skip is a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("AUTOGENV2_REQUIRE_ALL") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but .ci/run provides every real part (AUTOGENV2_REQUIRE_ALL=1): {reason}"


# -- fixtures of the in-process engine tests (tests/test_engine_*.py) --

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
