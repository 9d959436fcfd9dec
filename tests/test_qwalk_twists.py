"""QWalk twist averaging without the binary: the kpoint="all" conversion of a real PySCF KRHF
chkfile, VMC/DMC Writers at a twist (files of that k-point + the optimized Jastrow), the errors,
and the twist record the Reader reports."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyscf import gto, scf

from autogenv2.analysis import twist_weights_from_kpts
from autogenv2.codes.base import ReadResult
from autogenv2.codes.qwalk import syntax
from autogenv2.codes.qwalk.conversion import ConvertReader, ConvertWriter
from autogenv2.codes.qwalk.converter import ConversionError, basis_file, convert
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.codes.qwalk.twists import convert_all
from autogenv2.codes.qwalk.wavefunction import read_orbfile
from autogenv2.codes.qwalk.writer import DMCWriter, QWalkWriter, VMCWriter
from autogenv2.errors import OptionError
from autogenv2.states import Verdict
from conftest import QWALK_CASES, REPO

CASES = QWALK_CASES
WFOUT = CASES / "linear_h2" / "qw.linear.wfout"
"""A LINEAR optimizer's .wfout written by the real QWalk (SLATER-JASTROW, basis inline)."""


def krhf_chkfile(path: Path) -> tuple[Path, Any]:
    """Periodic H2 (5 bohr cube, STO-3G) with a 2x1x1 k-mesh: k = (0,0,0) and (pi/5,0,0) 1/bohr."""
    from pyscf.pbc import gto as pgto, scf as pscf

    cell = pgto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="sto-3g", a=np.eye(3) * 5.0, verbose=0)
    mf = pscf.KRHF(cell, cell.make_kpts([2, 1, 1])).density_fit()
    mf.chkfile = str(path)
    mf.kernel()
    mf.with_df._cderi_to_save.close()
    assert mf.converged
    return path, mf


@pytest.fixture(scope="module")
def krhf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return krhf_chkfile(tmp_path_factory.mktemp("krhf") / "mf.chk")


@pytest.fixture(scope="module")
def converted(krhf: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReadResult]:
    """The convert method with kpoint="all", run as the script a plan runs."""
    run = tmp_path_factory.mktemp("convert")
    writer = ConvertWriter(kpoint="all", jastrow="twobody")
    writer.write(run, {"chkfile": krhf[0]})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(writer.command(), cwd=run, env=env, capture_output=True, text=True, timeout=120)
    (run / "stdout.txt").write_text(proc.stdout + proc.stderr)
    result = ConvertReader().read(run, proc.returncode)
    assert result.verdict is Verdict.complete, result.reason
    return run, result


def _inputs(converted: tuple[Path, ReadResult], writer: QWalkWriter, **extra: Path) -> dict[str, Path]:
    """What the Manager hands the writer: the conversion's outputs, only the names the writer takes."""
    run, result = converted
    offered = {**{k: run / v for k, v in result.outputs.items()}, **extra}
    wanted = writer.consumes + writer.optional_inputs
    return {k: v for k, v in offered.items() if k in wanted}


def test_convert_all_writes_every_kpoint_as_the_single_kpoint_conversion(
        krhf: tuple[Path, Any], converted: tuple[Path, ReadResult], tmp_path: Path) -> None:
    chk, mf = krhf
    run, result = converted
    assert result.results["ntwists"] == 2
    assert result.results["twist_weights"] == list(twist_weights_from_kpts(mf.kpts)) == [0.5, 0.5]
    outputs = result.outputs
    for name in ("qwalk_system", "qwalk_slater", "qwalk_orb", "qwalk_basis", "qwalk_wavefunction"):
        assert outputs[f"{name}_k0"] == outputs[name]        # k-point 0 keeps the plain names
        assert outputs[f"{name}_k1"].startswith("qw_k1.")
    table = json.loads((run / outputs["qwalk_twists"]).read_text())
    np.testing.assert_allclose([t["kpoint"] for t in table["twists"]], mf.kpts, atol=1e-14)
    _, _, factors = basis_file(mf.cell)
    for k in (0, 1):
        single = tmp_path / f"k{k}"
        single.mkdir()
        files = convert(chk, single, kpoint=k, jastrow="twobody")
        mine, per_atom = read_orbfile(run / outputs[f"qwalk_orb_k{k}"])
        theirs, _ = read_orbfile(single / files["qwalk_orb"])
        np.testing.assert_array_equal(mine, theirs)
        occupied = mf.mo_coeff[k][:, mf.mo_occ[k] > 0.5]     # PySCF's orbitals at k, in QWalk's AO norm
        np.testing.assert_allclose(mine, (occupied * factors[:, None]).T, rtol=1e-12, atol=1e-14)
        assert per_atom == [1, 1]
        system = syntax.load(run / outputs[f"qwalk_system_k{k}"])
        assert syntax.compare(system, syntax.load(single / files["qwalk_system"])) == []
        kpoint = system.section("SYSTEM").section("KPOINT").words()   # 1 = antiperiodic along a
        assert kpoint == [f"{float(k)}", "0.0", "0.0"]
        orbitals = syntax.load(run / outputs[f"qwalk_slater_k{k}"], expand=False).section("ORBITALS")
        assert orbitals.get("ORBFILE") == outputs[f"qwalk_orb_k{k}"]


def test_writer_at_a_twist_uses_its_kpoint_and_the_optimized_jastrow(converted: tuple[Path, ReadResult],
                                                                     tmp_path: Path) -> None:
    writer = VMCWriter(twist=1, nconfig=50, nblock=10)
    run = tmp_path / "vmc"
    run.mkdir()
    written = writer.write(run, _inputs(converted, writer, wavefunction=WFOUT))
    assert "qw.vmc.k1.wf" in written and not {"qw.sys", "qw.slater", "qw.orb"} & set(written)
    top = syntax.load(run / "qw.vmc", expand=False)
    assert top.words()[:2] == ["include", "qw_k1.sys"]
    assert top.section("TRIALFUNC").words() == ["include", "qw.vmc.k1.wf"]
    tree = syntax.load(run / "qw.vmc")                          # as QWalk reads it: includes expanded
    assert tree.section("SYSTEM").section("KPOINT").words() == ["1.0", "0.0", "0.0"]
    trial = tree.section("TRIALFUNC")
    assert trial.type_word == "SLATER-JASTROW"
    assert trial.section("WF1").section("ORBITALS").get("ORBFILE") == "qw_k1.orb"
    optimized = syntax.load(WFOUT, expand=False).section("WF2")
    assert syntax.compare(trial.section("WF2"), optimized, rtol=0, atol=0) == []
    assert json.loads((run / "twist.json").read_text()) == {"twist": 1, "ntwists": 2, "weight": 0.5,
                                                            "kpoint": [np.pi / 5, 0.0, 0.0]}
    plain = DMCWriter(twist=0, timestep=0.02, nconfig=50)      # no optimizer: the conversion's own S-J
    (tmp_path / "dmc").mkdir()
    plain.write(tmp_path / "dmc", _inputs(converted, plain))
    assert syntax.load(tmp_path / "dmc" / "qw.dmc", expand=False).section("TRIALFUNC").words() == \
        ["include", "qw.wf"]
    untwisted = VMCWriter(nconfig=50)
    untwisted.write(run, _inputs(converted, untwisted))
    assert not (run / "twist.json").exists()
    assert syntax.load(run / "qw.vmc", expand=False).words()[:2] == ["include", "qw.sys"]


def test_twist_errors_are_one_line_naming_the_option(converted: tuple[Path, ReadResult],
                                                     tmp_path: Path) -> None:
    def error(writer: QWalkWriter, inputs: dict[str, Path]) -> str:
        (tmp_path / "run").mkdir(exist_ok=True)
        with pytest.raises(OptionError) as caught:
            writer.write(tmp_path / "run", inputs)
        assert "\n" not in str(caught.value)
        return str(caught.value)

    beyond = VMCWriter(twist=2)
    assert error(beyond, _inputs(converted, beyond)) == \
        "vmc: option 'twist': twist 2: the conversion has 2 k-points (twists 0 to 1)"
    single = {k: v for k, v in _inputs(converted, beyond).items() if k.startswith("qwalk_") and "_k" not in k
              and k != "qwalk_twists"}
    assert 'kpoint = "all"' in error(DMCWriter(twist=1, timestep=0.02), single)
    slater_only = tmp_path / "slater.wfout"
    slater_only.write_text((converted[0] / "qw.slater").read_text())
    twisted = VMCWriter(twist=1)
    assert "no Jastrow to reuse" in error(twisted, _inputs(converted, twisted, wavefunction=slater_only))
    with pytest.raises(OptionError, match="option 'twist'"):
        VMCWriter.build("step vmc", {"twist": -1})
    bad_kpoints = (({"kpoint": "every"}, 'nor "all"'), ({"kpoint": "all", "source": "mcscf"}, "source"))
    for options, words in bad_kpoints:
        with pytest.raises(OptionError, match=f"step convert: option 'kpoint': .*{words}") as caught:
            ConvertWriter.build("step convert", options)
        assert "\n" not in str(caught.value)
    molecule = scf.RHF(gto.M(atom="H 0 0 0; H 0 0 1.4", unit="bohr", basis="sto-3g", verbose=0))
    molecule.chkfile = str(tmp_path / "h2.chk")
    molecule.kernel()
    with pytest.raises(ConversionError, match="needs a periodic SCF"):
        convert_all(tmp_path / "h2.chk", tmp_path)


def test_reader_reports_the_twist_of_a_twisted_run(converted: tuple[Path, ReadResult],
                                                   tmp_path: Path) -> None:
    run = tmp_path / "vmc"
    shutil.copytree(CASES / "vmc_h2_sj", run)                   # a real QWalk VMC run's outputs
    before = QWalkReader(run_id="qw.vmc").read(run, 0)
    assert before.verdict is Verdict.complete and "twist" not in before.results
    writer = VMCWriter(twist=1)
    writer.write(run, _inputs(converted, writer))
    after = QWalkReader(run_id="qw.vmc").read(run, 0)
    assert after.verdict is Verdict.complete and after.results["energy"] == before.results["energy"]
    assert {k: after.results[k] for k in ("twist", "twist_weight", "ntwists")} == \
        {"twist": 1, "twist_weight": 0.5, "ntwists": 2}
    assert after.results["kpoint"] == pytest.approx([np.pi / 5, 0, 0])


BAD_TWIST_PLAN = """
root = "runs"
[[steps]]
name = "scf"
code = "pyscf"
method = "rhf"
basis = "sto-3g"
unit = "bohr"
atom = "H 0 0 0; H 0 0 1.4"
lattice = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]
kmesh = [2, 1, 1]
[[steps]]
name = "convert"
code = "qwalk"
method = "convert"
kpoint = "all"
jastrow = "none"
[[steps]]
name = "vmc"
code = "qwalk"
method = "vmc"
twist = 2
nblock = 10
[[jobs]]
id = "cell"
"""


def test_a_twist_the_conversion_lacks_fails_the_element_once_under_watch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Writer's refusal (found only when the inputs exist) fails the element with its one line;
    `run --watch` then ends instead of repeating the error every pass. QWalk never runs: a stand-in
    executable passes the plan's check that the program exists."""
    from autogenv2.status import JobStatus
    from conftest import autogenv2

    monkeypatch.setenv("AUTOGENV2_QWALK", "/bin/false")
    (tmp_path / "plan.toml").write_text(BAD_TWIST_PLAN)
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "0.3", timeout=600)
    assert "Traceback" not in proc.stdout + proc.stderr
    status = JobStatus.load(tmp_path / "runs" / "cell")
    assert status is not None
    vmc = status.element("vmc")
    assert vmc.state.value == "failed" and not vmc.attempts
    assert "twist 2: the conversion has 2 k-points" in vmc.reason
    assert proc.returncode == 3  # an element failed
    # the pass's action, the status table and the closing failure line: once each, not once per pass
    assert (proc.stdout + proc.stderr).count("the conversion has 2 k-points") <= 3
