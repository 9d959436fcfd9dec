"""A QWalk plan end to end with the real binary: PySCF → convert → LINEAR → VMC → DMC (examples/qwalk_h2)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autogenv2 import results
from conftest import REPO, autogenv2

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
