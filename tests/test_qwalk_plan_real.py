"""A QWalk plan end to end with the real binary: PySCF → convert → LINEAR → VMC → DMC (examples/qwalk_h2)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autogenv2 import results
from conftest import H2_SCF_STEP, REPO, autogenv2

pytestmark = [
    pytest.mark.skipif(shutil.which("qwalk") is None and not os.environ.get("AUTOGENV2_QWALK"),
                       reason="needs a QWalk binary: qwalk on PATH or $AUTOGENV2_QWALK"),
    pytest.mark.qwalk, pytest.mark.slow,
]


def test_h2_optimize_then_dmc_plan_completes(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "qwalk_h2" / "plan.toml", tmp_path / "plan.toml")
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame = results(tmp_path / "runs").set_index("element")
    assert set(frame["state"]) == {"done"}, frame[["state", "reason"]]
    hf = frame.loc["scf", "energy"]
    for element in ("linear", "vmc", "dmc"):
        assert frame.loc[element, "energy"] < hf  # the Jastrow and DMC lower the energy below HF
    energy, error = frame.loc["dmc", ["energy", "error"]]
    print(f"QWalk DMC H2 {energy:.5f} +/- {error:.5f} (exact -1.17447)")
    assert abs(energy - (-1.17447)) < 4 * error + 0.002  # timestep 0.02 bias is below 1 mHa for H2
    assert error <= 0.002
    again = autogenv2("run", str(tmp_path / "plan.toml"))
    assert "nothing to do" in again.stdout


SIZED_PLAN = H2_SCF_STEP + """
[[steps]]
name = "convert"
code = "qwalk"
method = "convert"
jastrow = "none"

[[steps]]
name = "vmc"
code = "qwalk"
method = "vmc"
nconfig = 100
nstep = 100
nblock = 40
resources = { walltime = "4" }

[[jobs]]
id = "h2"
"""


def test_qwalk_attempts_are_sized_to_the_walltime_and_blocks_merge(tmp_path: Path) -> None:
    """A 4 s walltime: the first VMC attempt is killed (its blocks count); later ones stop cleanly
    before the walltime at the size the Manager computed; the result is the merged .log's estimate."""
    from autogenv2 import stats
    from autogenv2.codes.qwalk import logparse
    from autogenv2.codes.qwalk.estimates import gosling_warmup
    from autogenv2.status import JobStatus

    (tmp_path / "plan.toml").write_text(SIZED_PLAN)
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = JobStatus.load(tmp_path / "runs" / "h2")
    assert status is not None
    vmc = status.element("vmc")
    first, *later = vmc.attempts
    print([(a.blocks, round(a.seconds or 0, 2), a.reason) for a in vmc.attempts])
    assert first.reason == "walltime" and 0 < (first.blocks or 0) < 40
    assert later and all(a.exit_code == 0 and a.reason == "" and (a.seconds or 9) < 4.0 for a in later)
    assert vmc.result["blocks"] == 40 == later[-1].blocks
    series = logparse.parse_log(tmp_path / "runs" / "h2" / "vmc" / "qw.vmc.log").series["vmc"]
    assert series.nblocks == 40
    est = stats.estimate(series.energy, series.totweight, gosling_warmup(series.energy))
    assert vmc.result["energy"] == pytest.approx(est.mean, abs=1e-12)
    assert vmc.result["error"] == pytest.approx(est.error, abs=1e-12)
