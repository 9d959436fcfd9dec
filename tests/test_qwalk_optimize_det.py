"""OPTIMIZE_DET from a plan: the PySCF step's ``cas`` option and the converter's ``optimize_det``.

The real-QWalk check (LINEAR with OPTIMIZE_DET lowers the CASSCF VMC energy) is in
tests/test_qwalk_real.py; examples/qwalk_lih_casscf runs it as a plan (tests/test_qwalk_plan_real.py).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyscf import lib

from autogenv2.codes.pyscf.writer import SCFWriter
from autogenv2.codes.qwalk import syntax
from autogenv2.codes.qwalk.converter import ConversionError, convert

H2 = "H 0 0 0; H 0 0 1.4"


def test_cas_needs_a_molecule_and_positive_sizes() -> None:
    with pytest.raises(ValueError, match="cas"):
        SCFWriter(atom=H2, cas=(0, 2))
    with pytest.raises(ValueError, match="cas"):
        SCFWriter(atom=H2, cas=(2, 2), lattice=[[5, 0, 0], [0, 5, 0], [0, 0, 5]])


def test_casscf_step_feeds_a_multideterminant_slater_with_optimize_det(tmp_path: Path) -> None:
    writer = SCFWriter(atom=H2, unit="bohr", basis="sto-3g", cas=(2, 2))
    writer.write(tmp_path, {})
    proc = subprocess.run([sys.executable, "scf.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "CASSCF energy" in proc.stdout, proc.stderr
    casscf = float(lib.chkfile.load(str(tmp_path / "mf.chk"), "mcscf/e_tot"))
    table = convert(tmp_path / "mf.chk", tmp_path, source="mcscf", ci_threshold=1e-8, optimize_det=True)
    slater = syntax.load(tmp_path / table["qwalk_slater"], expand=False)
    assert slater.has("OPTIMIZE_DET") and table["ndet"] >= 2 and table["energy"] == pytest.approx(casscf)
    assert casscf < float(lib.chkfile.load(str(tmp_path / "mf.chk"), "scf/e_tot")) - 1e-3
    with pytest.raises(ConversionError, match="optimize_det needs several determinants"):
        convert(tmp_path / "mf.chk", tmp_path / "x", source="scf", optimize_det=True)
