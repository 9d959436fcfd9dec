"""The whole chain on real PySCF + PyQMC: run, rerun, results, kill -9 at random moments."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autogenv2 import results
from autogenv2.status import JobStatus
from conftest import TINY_PLAN, autogenv2

pytestmark = pytest.mark.slow


def test_finished_ensemble_has_sane_energies(finished_h2: Path) -> None:
    frame = results(finished_h2 / "runs").set_index("element")
    assert set(frame["state"]) == {"done"}
    assert frame.loc["scf", "energy"] == pytest.approx(-1.1287094, abs=1e-6)
    for element in ("vmc", "dmc"):
        energy, error = frame.loc[element, ["energy", "error"]]
        assert 0 < error < 0.02
        assert -1.20 < energy < -1.14, (element, energy)


def test_rerun_of_finished_ensemble_does_nothing(finished_h2: Path) -> None:
    status_file = finished_h2 / "runs" / "h2" / "status.json"
    before = status_file.read_text()
    proc = autogenv2("run", str(finished_h2 / "plan.toml"))
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do: every job is done or failed" in proc.stdout
    assert status_file.read_text() == before


def test_status_and_results_commands(finished_h2: Path) -> None:
    proc = autogenv2("status", str(finished_h2 / "plan.toml"))
    assert proc.returncode == 0 and proc.stdout.count("done") >= 4
    proc = autogenv2("results", str(finished_h2 / "runs"), "--format", "json")
    rows = json.loads(proc.stdout)
    assert [r["element"] for r in rows] == ["scf", "opt", "vmc", "dmc"]
    csv = autogenv2("results", str(finished_h2 / "plan.toml"), "-f", "csv").stdout
    assert csv.splitlines()[0].startswith("job,element,code,method,state,energy,error")


def _markers(job_dir: Path) -> dict[str, int]:
    return {element: len(list((job_dir / element / ".autogenv2").glob("*.started")))
            for element in ("scf", "opt", "vmc", "dmc") if (job_dir / element).exists()}


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Kill `autogenv2 run --watch` with SIGKILL many times; the ensemble still completes exactly once."""
    (tmp_path / "plan.toml").write_text(TINY_PLAN.replace('id = "h2"', 'id = "k1"') + '[[jobs]]\nid = "k2"\n')
    rng = random.Random(7)
    kills = 0
    for _ in range(40):
        proc = subprocess.Popen([sys.executable, "-m", "autogenv2.cli", "run", str(tmp_path / "plan.toml"),
                                 "--watch", "--interval", "0.2"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.05, 2.5))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    final = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "0.5")
    assert final.returncode == 0, final.stdout + final.stderr
    assert kills >= 5
    for job in ("k1", "k2"):
        status = JobStatus.load(tmp_path / "runs" / job)
        assert status is not None
        assert [e.state.value for e in status.elements] == ["done"] * 4
        markers = _markers(tmp_path / "runs" / job)
        for element in status.elements:
            tokens = [a.token for a in element.attempts]
            assert len(set(tokens)) == len(tokens)
            # every launched process belongs to exactly one recorded attempt: nothing ran twice unseen;
            # an attempt abandoned before it reached the runner has no marker and can never start
            launched = [a for a in element.attempts if a.reason != "never started (abandoned)"]
            assert markers[element.name] == len(launched), (job, element.name, markers)
            assert all(a.phase == "finished" for a in launched)
        assert status.elements[3].result["blocks"] >= 20


def test_lineage_records_which_optimization_made_the_wavefunction(finished_h2: Path) -> None:
    import hashlib

    status = JobStatus.load(finished_h2 / "runs" / "h2")
    assert status is not None
    opt = status.element("opt")
    for name in ("vmc", "dmc"):
        lineage = status.element(name).lineage
        assert lineage["wavefunction"]["element"] == "opt"
        assert lineage["wavefunction"]["attempt"] == len(opt.attempts)
        digest = hashlib.sha256((finished_h2 / "runs" / "h2" / "opt" / "opt.hdf5").read_bytes()).hexdigest()
        assert lineage["wavefunction"]["sha256"] == digest
        assert lineage["chkfile"]["element"] == "scf"
    row = next(r for r in json.loads(autogenv2("results", str(finished_h2 / "runs"), "-f", "json").stdout)
               if r["element"] == "dmc")
    assert row["lineage"]["wavefunction"].startswith(f"opt#{len(opt.attempts)}:")


def test_index_serves_status_and_notices_deleted_or_edited_jobs(h2_copy: Path) -> None:
    """The SQLite index: rebuilt when missing; a deleted job directory is noticed by the no-op fast path."""
    import shutil

    index_file = h2_copy / "runs" / ".autogenv2" / "index.sqlite"
    assert index_file.is_file()
    index_file.unlink()
    rows = json.loads(autogenv2("results", str(h2_copy / "runs"), "-f", "json").stdout)
    assert [r["state"] for r in rows] == ["done"] * 4 and index_file.is_file()
    shutil.rmtree(h2_copy / "runs" / "h2" / "dmc")
    status = JobStatus.load(h2_copy / "runs" / "h2")
    assert status is not None
    status.elements[3].state = status.elements[3].state.__class__("planned")
    status.elements[3].attempts = []
    status.save(h2_copy / "runs" / "h2")  # a hand edit: the fast path must not skip it
    proc = autogenv2("run", str(h2_copy / "plan.toml"))
    assert "h2/dmc: wrote inputs" in proc.stdout and "started attempt 1" in proc.stdout
