"""Supercell folding (codes/qwalk/supercell.py): which k-points make a twist, and that the folded
orbitals are the primitive Bloch orbitals (evaluated by PySCF on both cells). The real-QWalk check
(twist-averaged Slater VMC of a 2x2x2 supercell = PySCF KRHF) is in tests/test_qwalk_real.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyscf.pbc import gto
from pyscf.pbc.tools import super_cell

from autogenv2.codes.qwalk.converter import ConversionError
from autogenv2.codes.qwalk.supercell import fold_source, twist_groups, twist_table

CELL = gto.M(atom="H 0 0 0; H 0.3 0.2 1.4", unit="bohr", a=[[4.0, 0, 0], [0.5, 4.2, 0], [0, 0.3, 3.8]],
             basis="sto-3g", verbose=0,
             precision=1e-12)  # lattice sums complete enough for 1e-5 (PySCF 2.8 too)


def test_a_4x4x4_mesh_folds_into_8_twists_of_a_2x2x2_supercell() -> None:
    kpts = CELL.make_kpts([4, 4, 4])
    groups = twist_groups(CELL, kpts, (2, 2, 2))
    assert len(groups) == 8 and all(len(g) == 8 for g in groups) and groups[0][0] == 0
    assert sorted(i for g in groups for i in g) == list(range(64))
    lattice = CELL.lattice_vectors() * 2
    for group in groups:  # members differ by supercell reciprocal vectors: e^{i dk.L} = 1 on the supercell
        phase = np.exp(1j * (kpts[group] - kpts[group[0]]) @ lattice.T)
        assert np.allclose(phase, 1)
    assert [w for _, w in twist_table(CELL, kpts, (2, 2, 2))] == [0.125] * 8
    assert len(twist_groups(CELL, CELL.make_kpts([2, 2, 2]), (2, 2, 2))) == 1
    with pytest.raises(ConversionError, match="do not fold into whole"):
        twist_groups(CELL, CELL.make_kpts([3, 3, 3]), (2, 2, 2))


def test_folded_orbitals_are_the_bloch_orbitals_on_the_supercell() -> None:
    ncopy = (2, 1, 2)
    kpts = CELL.make_kpts([2, 1, 4], scaled_center=[0.1, 0.2, 0.05])
    rng = np.random.default_rng(3)
    nao = CELL.nao_nr()
    coeff = rng.normal(size=(len(kpts), nao, nao)) + 1j * rng.normal(size=(len(kpts), nao, nao))
    occ = np.zeros((len(kpts), nao))
    occ[:, 0] = 2
    record = {"kpts": kpts, "mo_coeff": coeff, "mo_occ": occ, "e_tot": -1.0}
    for twist, group in enumerate(twist_groups(CELL, kpts, ncopy)):
        src = fold_source(CELL, record, twist, ncopy)
        assert src.energy == -4.0 and len(src.dets[0][1]) == len(src.dets[0][2]) == 4 == len(group)
        points = rng.uniform(-3, 9, size=(20, 3))
        supcell = super_cell(CELL, list(ncopy))
        ours = supcell.pbc_eval_gto("GTOval", points, kpt=src.kpoint) @ src.orbitals
        bloch = np.stack([CELL.pbc_eval_gto("GTOval", points, kpt=kpts[k]) @ coeff[k][:, 0]
                          for k in group], 1)
        assert np.allclose(ours, bloch, rtol=0, atol=1e-5)  # lattice sums cut at the cell's precision


def test_convert_all_makes_one_twist_per_supercell_twist(tmp_path: Path) -> None:
    """kpoint = "all" with a supercell: a 4x2x2 KRHF mesh is two twists of the 2x2x2 supercell."""
    import json

    from pyscf.pbc import scf

    from autogenv2.codes.qwalk import syntax
    from autogenv2.codes.qwalk.twists import convert_all

    cell = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", a=np.eye(3) * 4.0, basis="sto-3g", verbose=0)
    mf = scf.KRHF(cell, cell.make_kpts([4, 2, 2])).density_fit()
    mf.chkfile = str(tmp_path / "mf.chk")
    mf.kernel()
    table = convert_all(tmp_path / "mf.chk", tmp_path, jastrow="none", supercell=(2, 2, 2))
    twists = json.loads((tmp_path / "twists.json").read_text())
    assert table["ntwists"] == 2 and [t["weight"] for t in twists["twists"]] == [0.5, 0.5]
    kpoints = [syntax.load(tmp_path / name).section("SYSTEM").section("KPOINT").words()
               for name in (table["qwalk_system"], table["qwalk_system_k1"])]
    assert kpoints == [["0.0", "0.0", "0.0"], ["1.0", "0.0", "0.0"]]  # the second is antiperiodic along a1
    nspin = syntax.load(tmp_path / table["qwalk_system_k1"]).section("SYSTEM").section("NSPIN").words()
    assert nspin == ["8", "8"]
    assert twists["ncells"] == 8  # a run at either twist reports its energy per primitive cell too


def test_a_supercell_run_reports_its_energy_per_primitive_cell(tmp_path: Path) -> None:
    """The twist record of a 2x2x2 supercell run gives ``cells``; the Reader divides energy and error."""
    import json
    import shutil

    from autogenv2.codes.qwalk.reader import QWalkReader
    from autogenv2.codes.qwalk.twists import twist_inputs, write_record
    from conftest import QWALK_CASES

    run = tmp_path / "run"
    shutil.copytree(QWALK_CASES / "vmc_h2_sj", run)  # real QWalk output stands in for the supercell's
    plain = QWalkReader(run_id="qw.vmc").read(run, 0).results
    (tmp_path / "twists.json").write_text(json.dumps({"ntwists": 1, "ncells": 8, "twists": [
        {"twist": 0, "kpoint": [0.0, 0.0, 0.0], "weight": 1.0, "files": {"qwalk_system": "s"}}]}))
    _, record = twist_inputs("vmc", 0, {"qwalk_twists": tmp_path / "twists.json", "qwalk_system_k0": run})
    write_record(run, record)
    results = QWalkReader(run_id="qw.vmc").read(run, 0).results
    assert results["cells"] == 8 and results["energy"] == plain["energy"]
    assert results["energy_per_cell"] == pytest.approx(plain["energy"] / 8, rel=1e-15)
    assert results["error_per_cell"] == pytest.approx(plain["error"] / 8, rel=1e-15)
    assert "cells" not in plain and "energy_per_cell" not in plain
