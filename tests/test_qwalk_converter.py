"""PySCF -> QWalk conversion with real PySCF: recorded pyscf2qwalk files, and MO values point by point."""
from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyscf import gto, lib, mcscf, scf

from autogenv2.codes.qwalk import syntax
from autogenv2.codes.qwalk.conversion import ConvertReader, ConvertWriter
from autogenv2.codes.qwalk.converter import ConversionError, angular_factors, basis_file, convert
from autogenv2.codes.qwalk.wavefunction import read_orbfile
from autogenv2.states import Verdict
from conftest import QWALK_CASES

REPO = Path(__file__).resolve().parents[1]
CASES = QWALK_CASES
R_H2 = 1.3983973321781458
R_LIH = 3.015435976968469

# QWalk's own function order per shell symbol (Cubic_spline_build.cpp) and polynomials
# (Cubic_spline_calc.cpp), written here independently of the converter's table.
ORDER = {"S": ["S"], "P": ["Px", "Py", "Pz"], "5D_siesta": ["Dxy", "Dyz", "Dz2r2", "Dxz", "Dx2y2"],
         "7F_siesta": ["Fm3", "Fxyz", "Fm1", "F0", "Fp1", "Fp2", "Fp3mod"],
         "9G_pyscf": ["G8", "G6", "G4", "G2", "G0", "G1", "G3", "G5", "G7"]}
L_OF = {"S": 0, "P": 1, "5D_siesta": 2, "7F_siesta": 3, "9G_pyscf": 4}
Fn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
POLY: dict[str, Fn] = {
    "S": lambda x, y, z: 1 + 0 * x, "Px": lambda x, y, z: x, "Py": lambda x, y, z: y, "Pz": lambda x, y, z: z,
    "Dxy": lambda x, y, z: x * y, "Dyz": lambda x, y, z: y * z, "Dxz": lambda x, y, z: x * z,
    "Dx2y2": lambda x, y, z: x * x - y * y, "Dz2r2": lambda x, y, z: 2 * z * z - x * x - y * y,
    "Fm3": lambda x, y, z: y * (3 * x * x - y * y), "Fxyz": lambda x, y, z: x * y * z,
    "Fm1": lambda x, y, z: y * (4 * z * z - x * x - y * y),
    "F0": lambda x, y, z: z * (2 * z * z - 3 * (x * x + y * y)),
    "Fp1": lambda x, y, z: x * (4 * z * z - x * x - y * y), "Fp2": lambda x, y, z: z * (x * x - y * y),
    "Fp3mod": lambda x, y, z: x * (x * x - 3 * y * y),
}


def _chk(path: Path, mol: gto.Mole, method: Callable[[gto.Mole], Any] = scf.RHF) -> tuple[Path, Any]:
    mf = method(mol)
    mf.chkfile = str(path)
    mf.kernel()
    assert mf.converged
    return path, mf


@pytest.fixture(scope="module")
def chks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    base = tmp_path_factory.mktemp("chk")
    h2 = gto.M(atom=[["H", (0, 0, 0)], ["H", (0, 0, R_H2)]], unit="bohr", basis="ccpvdz", verbose=0)
    lih_ecp = gto.M(atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]], unit="bohr", verbose=0,
                    basis={"Li": "ccecpccpvdz", "H": "ccpvdz"}, ecp={"Li": "ccecp"})
    lih = gto.M(atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]], unit="bohr", basis="ccpvdz", verbose=0)
    li = gto.M(atom="Li 0 0 0", basis="ccpvtz", spin=1, verbose=0)
    return {"h2": _chk(base / "h2.chk", h2), "lih_ecp": _chk(base / "lih_ecp.chk", lih_ecp),
            "lih": _chk(base / "lih.chk", lih), "li_uhf": _chk(base / "li_uhf.chk", li, scf.UHF),
            "li_rohf": _chk(base / "li_rohf.chk", li, scf.ROHF)}


def qwalk_ao_values(mol: gto.Mole, directory: Path, points: np.ndarray) -> np.ndarray:
    """Basis functions as QWalk evaluates the written .basis (GAMESS norm, radial renormalization)."""
    shells_of = {}
    for sec in syntax.load(directory / "qw.basis").sections("BASIS"):
        words = sec.section("GAMESS").words()
        shells, i = [], 0
        while i < len(words):
            symbol, n = words[i], int(words[i + 1])
            prim = np.array(words[i + 2:i + 2 + 3 * n], dtype=float).reshape(n, 3)
            shells.append((symbol, prim[:, 1], prim[:, 2]))
            i += 2 + 3 * n
        shells_of[sec.words()[0]] = shells
    columns = []
    for atom in range(mol.natm):
        x, y, z = (points - mol.atom_coord(atom)).T
        r2 = x * x + y * y + z * z
        for symbol, exps, coefs in shells_of[mol.atom_symbol(atom)]:
            l = L_OF[symbol]
            weights = coefs * exps ** ((2 * l + 3) / 4)
            norm2 = sum(wi * wj * math.gamma(l + 1.5) / (2 * (ai + aj) ** (l + 1.5))
                        for wi, ai in zip(weights, exps, strict=True)
                        for wj, aj in zip(weights, exps, strict=True))
            radial = (weights[None, :] * np.exp(-np.outer(r2, exps))).sum(axis=1) / math.sqrt(norm2)
            columns += [radial * POLY[name](x, y, z) for name in ORDER[symbol]]
    return np.array(columns).T


def _points(n: int = 40) -> np.ndarray:
    return np.random.default_rng(3).normal(scale=1.5, size=(n, 3)) + np.array([0, 0, 1.0])


def test_angular_factors_are_real_spherical_harmonic_norms() -> None:
    four_pi = 4 * math.pi
    assert angular_factors(0) == pytest.approx([math.sqrt(1 / four_pi)])
    assert angular_factors(1) == pytest.approx([math.sqrt(3 / four_pi)] * 3)
    d = [math.sqrt(15 / four_pi)] * 2 + [math.sqrt(5 / (4 * four_pi)), math.sqrt(15 / four_pi),
                                         math.sqrt(15 / (4 * four_pi))]
    assert angular_factors(2) == pytest.approx(d)
    assert len(angular_factors(3)) == 7 and len(angular_factors(4)) == 9
    with pytest.raises(ConversionError, match="l=5"):
        angular_factors(5)


@pytest.mark.parametrize("name", ["h2", "lih_ecp", "lih"])
def test_orbitals_evaluate_to_the_pyscf_orbitals(chks: dict[str, tuple[Path, Any]], tmp_path: Path,
                                                 name: str) -> None:
    chk, mf = chks[name]
    table = convert(chk, tmp_path, jastrow="none")
    coefficients, per_center = read_orbfile(tmp_path / table["qwalk_orb"])
    points = _points()
    theirs = mf.mol.eval_gto("GTOval_sph", points) @ mf.mo_coeff[:, :len(coefficients)]
    ours = qwalk_ao_values(mf.mol, tmp_path, points) @ coefficients.T
    assert per_center == [int(stop - start) for start, stop in mf.mol.aoslice_by_atom()[:, 2:]]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert table["energy"] == pytest.approx(mf.e_tot)


@pytest.mark.parametrize("name, case", [("h2", "vmc_h2_sj"), ("lih_ecp", "pyscf_lih_ccecp_vmc_slater"),
                                        ("lih", "pyscf_lih_vmc_slater")])
def test_files_match_the_recorded_pyscf2qwalk_conversion(chks: dict[str, tuple[Path, Any]], tmp_path: Path,
                                                          name: str, case: str) -> None:
    table = convert(chks[name][0], tmp_path, jastrow="threebody", optimizebasis=True)
    pairs = (("qwalk_system", "qw.sys"), ("qwalk_slater", "qw.slater"), ("qwalk_basis", "qw.basis"))
    for ours, recorded in pairs:
        diffs = syntax.compare(syntax.load(CASES / case / recorded, expand=False),
                               syntax.load(tmp_path / table[ours], expand=False), rtol=2e-6, atol=1e-6)
        assert diffs == [], (recorded, diffs)
    if name == "h2":
        jastrow = syntax.load(tmp_path / table["qwalk_jastrow"])
        assert syntax.compare(syntax.load(CASES / case / "qw.jast2"), jastrow) == []
    ours, _ = read_orbfile(tmp_path / table["qwalk_orb"])
    recorded, _ = read_orbfile(CASES / case / "qw.orb")
    occupied = recorded[:len(ours)]
    signs = np.sign(np.sum(ours * occupied, axis=1))[:, None]             # MO signs are arbitrary
    np.testing.assert_allclose(ours, signs * occupied, atol=1e-7)


def test_pseudopotential_section_from_the_ecp(chks: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    chk, mf = chks["lih_ecp"]
    table = convert(chk, tmp_path, jastrow="twobody")
    tree = syntax.load(tmp_path / table["qwalk_system"])
    pseudo = tree.section("PSEUDO")
    assert pseudo.words()[0] == "Li" and pseudo.get("AIP") == "6"
    oldqmc = pseudo.section("BASIS").section("OLDQMC").words()
    assert oldqmc[:4] == ["0.0", "2", "1", "3"]                          # s channel, then the local one
    atoms = tree.section("SYSTEM").sections("ATOM")
    assert [a.words()[:2] for a in atoms] == [["Li", "1"], ["H", "1"]]   # valence charge with the ECP
    wf = syntax.load(tmp_path / table["qwalk_wavefunction"])
    assert wf.type_word == "slater-jastrow" and wf.section("wf2").type_word == "JASTROW2"
    assert not any(s.has("OPTIMIZEBASIS") for s in wf.walk())


def test_unrestricted_and_restricted_open_shell(chks: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    chk, mf = chks["li_uhf"]
    (tmp_path / "u").mkdir()
    table = convert(chk, tmp_path / "u", jastrow="none")
    slater = syntax.load(tmp_path / "u" / table["qwalk_slater"], expand=False)
    assert slater.section("STATES").words() == ["1", "2", "3"]
    assert slater.section("ORBITALS").get("NMO") == "3"
    assert syntax.load(tmp_path / "u" / "qw.sys").section("SYSTEM").section("NSPIN").words() == ["2", "1"]
    coefficients, _ = read_orbfile(tmp_path / "u" / "qw.orb")
    points = _points()
    beta = mf.mol.eval_gto("GTOval_sph", points) @ mf.mo_coeff[1][:, 0]
    ours = qwalk_ao_values(mf.mol, tmp_path / "u", points) @ coefficients[2]
    np.testing.assert_allclose(ours, beta, rtol=1e-9)
    (tmp_path / "r").mkdir()
    table = convert(chks["li_rohf"][0], tmp_path / "r", jastrow="none")
    slater = syntax.load(tmp_path / "r" / table["qwalk_slater"], expand=False)
    assert slater.section("STATES").words() == ["1", "2", "1"]
    assert slater.section("ORBITALS").get("NMO") == "2"


@pytest.mark.slow
def test_casscf_gives_a_multideterminant_slater(chks: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    chk, mf = chks["lih_ecp"]
    mc = mcscf.CASSCF(mf, 2, 2)
    mc.chkfile = str(tmp_path / "cas.chk")
    mc.kernel()
    with pytest.raises(ConversionError, match="mcscf/ci"):
        convert(tmp_path / "cas.chk", tmp_path, source="mcscf")
    lib.chkfile.save(str(tmp_path / "cas.chk"), "mcscf/ci", mc.ci)
    table = convert(tmp_path / "cas.chk", tmp_path, source="mcscf", ci_threshold=0.0, jastrow="none")
    slater = syntax.load(tmp_path / table["qwalk_slater"], expand=False)
    weights = np.array(slater.section("DETWT").words(), dtype=float)
    states = np.array(slater.section("STATES").words(), dtype=int).reshape(-1, 2)
    assert table["ndet"] == len(weights) == len(states) and table["energy"] == pytest.approx(mc.e_tot)
    assert np.sum(weights ** 2) == pytest.approx(1.0)
    assert abs(weights[0]) == pytest.approx(np.abs(mc.ci).max())
    assert list(states[0]) == [1, 1] and set(states.ravel()) <= {1, 2}
    assert convert(tmp_path / "cas.chk", tmp_path, source="mcscf", ci_threshold=0.5)["ndet"] == 1


def test_conversion_errors(chks: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    cart = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="ccpvdz", cart=True, verbose=0)
    _chk(tmp_path / "cart.chk", cart)
    with pytest.raises(ConversionError, match="cartesian"):
        convert(tmp_path / "cart.chk", tmp_path)
    with pytest.raises(ConversionError, match="no 'mcscf' group"):
        convert(chks["h2"][0], tmp_path, source="mcscf")
    assert basis_file(chks["h2"][1].mol)[1] == [5, 5]


@pytest.mark.slow
def test_periodic_gamma_matches_recorded_conversion(tmp_path: Path) -> None:
    from pyscf.pbc import gto as pgto, scf as pscf

    cell = pgto.M(atom=[["H", (0, 0, 0)], ["H", (0, 0, R_H2)]], unit="bohr", a=np.eye(3) * 7.558904498260247,
                  basis="ccpvdz", verbose=0)
    mf = pscf.KRHF(cell, kpts=cell.make_kpts([1, 1, 1])).density_fit()
    mf.chkfile = str(tmp_path / "pbc.chk")
    mf.kernel()
    mf.with_df._cderi_to_save.close()          # PySCF's density-fitting temp file (else a ResourceWarning)
    table = convert(tmp_path / "pbc.chk", tmp_path, jastrow="twobody", optimizebasis=True)
    case = CASES / "pyscf_h2_pbc_gamma_vmc"
    assert syntax.compare(syntax.load(case / "qw_0.sys"), syntax.load(tmp_path / "qw.sys"), rtol=1e-5) == []
    ours = syntax.load(tmp_path / "qw.jast2")
    recorded = syntax.load(case / "qw.jast2")
    only_recorded = ["(top)/group[1]: 'threebody' only in the first input"]
    assert syntax.compare(recorded, ours, rtol=1e-5) == only_recorded
    theirs, _ = read_orbfile(case / "qw_0.orb")
    mine, _ = read_orbfile(tmp_path / table["qwalk_orb"])
    np.testing.assert_allclose(np.abs(mine), np.abs(theirs[:1]), atol=1e-7)


@pytest.mark.slow
def test_convert_method_runs_as_a_script(chks: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    writer = ConvertWriter(jastrow="twobody", run_id="h2")
    run = tmp_path / "run"
    run.mkdir()
    assert writer.write(run, {"chkfile": chks["h2"][0]}) == ["convert.json", "convert.py"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(writer.command(), cwd=run, env=env, capture_output=True, text=True, timeout=120)
    (run / "stdout.txt").write_text(proc.stdout + proc.stderr)
    result = ConvertReader(min_blocks=3).read(run, proc.returncode)
    assert result.verdict is Verdict.complete, result.reason
    assert result.outputs == {"qwalk_system": "h2.sys", "qwalk_basis": "h2.basis", "qwalk_orb": "h2.orb",
                              "qwalk_slater": "h2.slater", "qwalk_jastrow": "h2.jast2",
                              "qwalk_wavefunction": "h2.wf"}
    assert result.results["reference_energy"] == pytest.approx(chks["h2"][1].e_tot)
    bad = ConvertWriter(source="mcscf")
    (tmp_path / "bad").mkdir()
    bad.write(tmp_path / "bad", {"chkfile": chks["h2"][0]})
    proc = subprocess.run(bad.command(), cwd=tmp_path / "bad", env=env, capture_output=True, text=True,
                          timeout=120)
    (tmp_path / "bad" / "stdout.txt").write_text(proc.stdout + proc.stderr)
    failed = ConvertReader().read(tmp_path / "bad", proc.returncode)
    assert proc.returncode == 1 and failed.verdict is Verdict.failed and "mcscf" in failed.reason
    assert json.loads((tmp_path / "bad" / "convert.json").read_text())["source"] == "mcscf"
