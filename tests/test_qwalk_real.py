"""Real QWalk runs: PySCF -> our converter -> our Writers -> QWalk -> QWalkReader.

A Slater determinant's VMC energy must reproduce the PySCF energy it came from (HF, and
CASSCF for a multi-determinant expansion) within 3 error bars. Each test is kept to seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyscf import gto, lib, mcscf, scf

from autogenv2.codes.base import ReadResult
from autogenv2.codes.qwalk import syntax
from autogenv2.codes.qwalk.converter import convert
from autogenv2.codes.qwalk.optimizers import LinearWriter
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.codes.qwalk.writer import DMCWriter, QWalkWriter, VMCWriter
from autogenv2.states import Verdict

pytestmark = [
    pytest.mark.skipif(shutil.which("qwalk") is None and not os.environ.get("AUTOGENV2_QWALK"),
                       reason="needs a QWalk binary: qwalk on PATH or $AUTOGENV2_QWALK"),
    pytest.mark.qwalk, pytest.mark.slow,
]
R_H2 = 1.3983973321781458
R_LIH = 3.015435976968469


def _scf(tmp: Path, name: str, **kw: Any) -> tuple[Path, Any]:
    mol = gto.M(unit="bohr", verbose=0, **kw)
    mf = scf.RHF(mol)
    mf.chkfile = str(tmp / f"{name}.chk")
    mf.kernel()
    return tmp / f"{name}.chk", mf


def _run(writer: QWalkWriter, run: Path, inputs: dict[str, Path]) -> ReadResult:
    run.mkdir(exist_ok=True)
    writer.write(run, inputs)
    proc = subprocess.run(writer.command(), cwd=run, capture_output=True, text=True, timeout=120)
    (run / "stdout.txt").write_text(proc.stdout)
    (run / "stderr.txt").write_text(proc.stderr)
    return QWalkReader(run_id=writer.qwalk_run).read(run, proc.returncode)


def _converted(tmp: Path, chk: Path, **kw: Any) -> dict[str, Path]:
    out = tmp / "convert"
    out.mkdir(exist_ok=True)
    table = convert(chk, out, **kw)
    return {k: out / v for k, v in table.items() if k.startswith("qwalk_")}


def _within(result: ReadResult, reference: float, sigmas: float = 3.0) -> None:
    assert result.verdict is Verdict.complete, result.reason
    energy, error = result.results["energy"], result.results["error"]
    deviation = (energy - reference) / error
    print(f"QWalk VMC {energy:.5f} +/- {error:.5f}, PySCF {reference:.5f}: {deviation:+.2f} sigma")
    assert 0 < error < 0.02 and abs(energy - reference) < sigmas * error


@pytest.mark.parametrize("name, molecule", [
    ("h2", dict(atom=[["H", (0, 0, 0)], ["H", (0, 0, R_H2)]], basis="ccpvdz")),
    ("lih_ccecp", dict(atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]],
                       basis={"Li": "ccecpccpvdz", "H": "ccpvdz"}, ecp={"Li": "ccecp"})),
])
def test_vmc_of_converted_slater_reproduces_hf(tmp_path: Path, name: str, molecule: dict[str, Any]) -> None:
    chk, mf = _scf(tmp_path, name, **molecule)
    inputs = _converted(tmp_path, chk, jastrow="none")
    result = _run(VMCWriter(nconfig=100, nblock=30, nstep=20, randomseed=(17, 29)), tmp_path / "vmc", inputs)
    _within(result, mf.e_tot)


def test_vmc_of_casscf_expansion_reproduces_casscf(tmp_path: Path) -> None:
    chk, mf = _scf(tmp_path, "lih", atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]],
                   basis={"Li": "ccecpccpvdz", "H": "ccpvdz"}, ecp={"Li": "ccecp"})
    mc = mcscf.CASSCF(mf, 2, 2)
    mc.chkfile = str(chk)
    mc.kernel()
    lib.chkfile.save(str(chk), "mcscf/ci", mc.ci)
    inputs = _converted(tmp_path, chk, source="mcscf", ci_threshold=1e-6, jastrow="none")
    ndet = len(syntax.load(inputs["qwalk_slater"], expand=False).section("DETWT").words())
    assert ndet >= 2 and mc.e_tot < mf.e_tot - 1e-2
    result = _run(VMCWriter(nconfig=100, nblock=30, nstep=20, randomseed=(5, 7)), tmp_path / "vmc", inputs)
    _within(result, mc.e_tot)


def test_vmc_of_twisted_periodic_cell_reproduces_hf_at_that_twist(tmp_path: Path) -> None:
    import numpy as np
    from pyscf.pbc import gto as pgto, scf as pscf

    cell = pgto.M(atom=[["H", (0, 0, 0)], ["H", (0, 0, 1.4)]], unit="bohr", a=np.eye(3) * 6.0, basis="ccpvdz",
                  verbose=0)
    mf = pscf.KRHF(cell, kpts=cell.get_abs_kpts(np.array([[0.25, 0.25, 0.0]]))).density_fit()
    mf.chkfile = str(tmp_path / "twist.chk")
    mf.kernel()
    mf.with_df._cderi_to_save.close()
    inputs = _converted(tmp_path, tmp_path / "twist.chk", jastrow="none")
    system = syntax.load(inputs["qwalk_system"]).section("SYSTEM")
    assert system.type_word == "PERIODIC" and system.section("KPOINT").words() == ["0.5", "0.5", "0.0"]
    assert syntax.load(inputs["qwalk_slater"], expand=False).section("CORBITALS") is not None
    result = _run(VMCWriter(nconfig=100, nblock=30, nstep=10, randomseed=(3, 7)), tmp_path / "vmc", inputs)
    _within(result, mf.e_tot)


def test_vmc_continues_then_dmc_reads_its_walkers(tmp_path: Path) -> None:
    chk, mf = _scf(tmp_path, "h2", atom=[["H", (0, 0, 0)], ["H", (0, 0, R_H2)]], basis="ccpvdz")
    inputs = _converted(tmp_path, chk, jastrow="twobody")
    vmc = VMCWriter(nconfig=50, nblock=6, nstep=10, randomseed=(3, 9))
    first = _run(vmc, tmp_path / "vmc", inputs)
    wanted = first.more["nblock"]                                # min_blocks=10 after warm-up
    assert first.verdict is Verdict.incomplete and wanted >= 10
    vmc.extend(first)
    second = _run(vmc, tmp_path / "vmc", inputs)
    method = syntax.load(tmp_path / "vmc" / "qw.vmc").section("METHOD")
    assert (method.get("NBLOCK"), method.get("READCONFIG")) == (str(wanted - 6), "qw.vmc.config")
    assert second.results["blocks"] == wanted and second.outputs == {"config": "qw.vmc.config"}
    dmc = DMCWriter(timestep=0.02, nconfig=50, nblock=25, nstep=20, randomseed=(5, 11))  # 12 warm-up
    result = _run(dmc, tmp_path / "dmc", {**inputs, "config": tmp_path / "vmc" / second.outputs["config"]})
    assert result.verdict is Verdict.complete, result.reason
    assert result.results["energy"] < mf.e_tot                  # DMC recovers correlation energy


def test_linear_optimization_then_vmc_of_its_wfout(tmp_path: Path) -> None:
    chk, mf = _scf(tmp_path, "h2", atom=[["H", (0, 0, 0)], ["H", (0, 0, R_H2)]], basis="ccpvdz")
    inputs = _converted(tmp_path, chk, jastrow="twobody", optimizebasis=False)
    linear = LinearWriter(iterations=2, total_nstep=1024, total_fit=512, randomseed=(2, 3))
    result = _run(linear, tmp_path / "linear", inputs)
    assert result.outputs == {"wavefunction": "qw.linear.wfout"}, result.reason
    wfout = tmp_path / "linear" / "qw.linear.wfout"
    vmc = _run(VMCWriter(nconfig=100, nblock=15, nstep=10, randomseed=(4, 5)), tmp_path / "vmc",
               {**inputs, "wavefunction": wfout})
    assert vmc.verdict is Verdict.complete, vmc.reason
    energy, error = result.results["energy"], result.results["error"]
    print(f"Slater-Jastrow VMC after LINEAR: {vmc.results['energy']:.5f} +/- {vmc.results['error']:.5f}; "
          f"LINEAR's own: {energy:.5f} +/- {error:.5f} (last iteration {result.results['iterations'][-1]})")
    assert vmc.results["energy"] < mf.e_tot - 0.01              # the Jastrow lowers the energy
    # the element's energy is its final VMC of the .wfout (not the last iteration's, which is that of the
    # parameters before the last step): the same wave function as the separate VMC, within 4 sigma
    assert result.results["energy_of"] == "a VMC of the final parameters"
    assert result.results["final_vmc_blocks"] == linear.final_vmc_nblock and error > 0
    assert energy != result.results["iterations"][-1]["energy"]
    assert abs(energy - vmc.results["energy"]) < 4 * np.hypot(error, vmc.results["error"])
    linear.extend(result)  # another attempt from its .wfout: its final VMC alone, not appended to the last
    again = _run(linear, tmp_path / "linear", inputs)
    assert again.results["final_vmc_blocks"] == linear.final_vmc_nblock, again.reason
    assert "trialfunc { include qw.linear.wfin }" in (tmp_path / "linear" / "qw.linear").read_text()


@pytest.mark.parametrize("name, molecule, aip", [
    ("lih_ccecp", dict(atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]],
                       basis={"Li": "ccecpccpvdz", "H": "ccpvdz"}, ecp={"Li": "ccecp"}), "6"),   # s + local
    ("si_ccecp", dict(atom=[["Si", (0, 0, 0)]], basis="ccecpccpvdz", ecp="ccecp", spin=2), "12"),  # s,p+local
])
def test_ccecp_dmc_uses_tmoves_and_qwalks_integration_points(tmp_path: Path, name: str,
                                                              molecule: dict[str, Any], aip: str) -> None:
    """Defaults as QWalk's own tools set them: AIP from the channel count, T-moves for a PSEUDO."""
    mol = gto.M(unit="bohr", verbose=0, **molecule)
    mf = scf.ROHF(mol)
    mf.chkfile = str(tmp_path / f"{name}.chk")
    mf.kernel()
    inputs = _converted(tmp_path, tmp_path / f"{name}.chk", jastrow="none")
    (pseudo,) = syntax.load(inputs["qwalk_system"]).sections("PSEUDO")
    assert pseudo.get("AIP") == aip
    dmc = DMCWriter(timestep=0.05, nconfig=32, nblock=24, nstep=10, randomseed=(7, 13))  # 0.5 au a block:
    # the DMC warm-up (at least 10 au, at most half the blocks) drops 12
    result = _run(dmc, tmp_path / "dmc", inputs)
    assert syntax.load(tmp_path / "dmc" / "qw.dmc").section("METHOD").has("TMOVES")
    assert "T-moves turned on" in (tmp_path / "dmc" / "qw.dmc.o").read_text()
    assert result.verdict is not Verdict.failed and result.results["blocks"] == 24, result.reason
    assert result.results["warmup"] >= 12
    energy, error = result.results["energy"], result.results["error"]
    print(f"{name} DMC with T-moves: {energy:.4f} +/- {error:.4f}, ROHF {mf.e_tot:.4f}")
    assert abs(energy - mf.e_tot) < 0.2 and 0 < error < 0.05
    off = _run(DMCWriter(timestep=0.05, nconfig=32, nblock=2, nstep=10, tmoves=False), tmp_path / "off",
               inputs)
    assert off.verdict is not Verdict.failed, off.reason
    assert "T-moves" not in (tmp_path / "off" / "qw.dmc.o").read_text()


def test_optimize_det_linear_lowers_the_casscf_vmc_energy(tmp_path: Path) -> None:
    """CASSCF(2,2) of LiH (ccECP) -> Slater-Jastrow with OPTIMIZE_DET -> LINEAR varies the Jastrow and
    the determinant weights together -> VMC of its .wfout is below the CASSCF energy (which VMC of the
    bare expansion reproduces, test above)."""
    chk, mf = _scf(tmp_path, "lih", atom=[["Li", (0, 0, 0)], ["H", (0, 0, R_LIH)]],
                   basis={"Li": "ccecpccpvdz", "H": "ccpvdz"}, ecp={"Li": "ccecp"})
    mc = mcscf.CASSCF(mf, 2, 2)
    mc.chkfile = str(chk)
    mc.kernel()
    lib.chkfile.save(str(chk), "mcscf/ci", mc.ci)
    inputs = _converted(tmp_path, chk, source="mcscf", ci_threshold=1e-6, jastrow="twobody",
                        optimize_det=True)
    slater = syntax.load(inputs["qwalk_slater"], expand=False)
    assert slater.has("OPTIMIZE_DET")
    before = [float(w) for w in slater.section("DETWT").words()]
    linear = _run(LinearWriter(iterations=3, total_nstep=1024, total_fit=512, randomseed=(8, 9)),
                  tmp_path / "linear", inputs)
    assert linear.outputs == {"wavefunction": "qw.linear.wfout"}, linear.reason
    wfout = syntax.load(tmp_path / "linear" / "qw.linear.wfout", expand=False)
    after = [float(csf.words()[0]) for s in wfout.walk() for csf in s.sections("CSF")]  # QWalk writes CSFs
    print(f"determinant weights {before} -> {after}")
    assert len(after) == len(before) >= 2
    assert max(abs(a - b) for a, b in zip(after, before, strict=True)) > 1e-3
    vmc = _run(VMCWriter(nconfig=100, nblock=20, nstep=10, randomseed=(4, 5)), tmp_path / "vmc",
               {**inputs, "wavefunction": tmp_path / "linear" / "qw.linear.wfout"})
    assert vmc.verdict is Verdict.complete, vmc.reason
    energy, error = vmc.results["energy"], vmc.results["error"]
    print(f"VMC after LINEAR with OPTIMIZE_DET {energy:.5f} +/- {error:.5f}; CASSCF {mc.e_tot:.5f}")
    assert energy < mc.e_tot - 3 * error


def test_supercell_twist_average_of_slater_vmc_reproduces_krhf(tmp_path: Path) -> None:
    """A 2x2x2 supercell of H2 in a 4 bohr cell (16 electrons), at two twists: the Gamma-centred and a
    shifted 2x2x2 primitive mesh each fold into one supercell twist, whose Slater determinant is the
    KRHF's. The twist-averaged QWalk VMC must equal 8 x the twist-averaged KRHF energy within 2 sigma."""
    import numpy as np
    from pyscf.pbc import gto as pgto, scf as pscf

    from autogenv2 import analysis

    cell = pgto.M(atom=[["H", (0, 0, 0)], ["H", (0, 0, 1.4)]], unit="bohr", a=np.eye(3) * 4.0, basis="sto-3g",
                  verbose=0)
    energies, errors, references = [], [], []
    for i, center in enumerate(([0, 0, 0], [0.25, 0.25, 0.25])):
        mf = pscf.KRHF(cell, cell.make_kpts([2, 2, 2], scaled_center=center)).density_fit()
        mf.chkfile = str(tmp_path / f"t{i}.chk")
        mf.kernel()
        out = tmp_path / f"convert{i}"
        out.mkdir()
        table = convert(tmp_path / f"t{i}.chk", out, jastrow="none", supercell=(2, 2, 2))
        system = syntax.load(out / table["qwalk_system"]).section("SYSTEM")
        assert system.section("NSPIN").words() == ["8", "8"] and len(system.sections("ATOM")) == 16
        assert system.section("KPOINT").words() == (["0.0"] * 3 if i == 0 else ["1.0"] * 3)  # antiperiodic
        inputs = {k: out / v for k, v in table.items() if k.startswith("qwalk_")}
        result = _run(VMCWriter(nconfig=32, nblock=12, nstep=10, randomseed=(3, 5 + i)), tmp_path / f"vmc{i}",
                      inputs)
        assert result.verdict is Verdict.complete, result.reason
        energies.append(result.results["energy"])
        errors.append(result.results["error"])
        references.append(8 * mf.e_tot)
        assert table["energy"] == pytest.approx(8 * mf.e_tot)
    mean, sigma = analysis.twist_average(energies, errors, [0.5, 0.5])
    reference = float(np.mean(references))
    print(f"supercell twists {energies} +/- {errors}; average {mean:.4f} +/- {sigma:.4f}, "
          f"KRHF x8 {reference:.4f}")
    assert abs(mean - reference) < 2 * sigma and sigma < 0.1
