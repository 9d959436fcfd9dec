"""QWalk Writers: reproduce the recorded inputs of real runs, refuse the recorded input mistakes."""
from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autogenv2.codes import get_method
from autogenv2.codes.base import ReadResult
from autogenv2.codes.qwalk import METHODS, syntax
from autogenv2.codes.qwalk.averages import RegionFluctuation, TBDMBasis
from autogenv2.codes.qwalk.conversion import ConvertWriter
from autogenv2.codes.qwalk.optimizers import LinearWriter, OptimizeWriter
from autogenv2.codes.qwalk.system import Atom, Pseudo, System
from autogenv2.codes.qwalk.wavefunction import (
    AtomBasis,
    BasisFile,
    Jastrow,
    Orbitals,
    Shell,
    Slater,
    read_orbfile,
    slater_jastrow,
    write_orbfile,
)
from autogenv2.codes.qwalk.writer import DMCWriter, PostprocessWriter, VMCWriter
from autogenv2.errors import AutogenError, OptionError, PlanError
from autogenv2.states import Verdict
from conftest import QWALK_CASES

CASES = QWALK_CASES

H2 = {"qwalk_system": "qw.sys", "qwalk_orb": "qw.orb", "qwalk_basis": "qw.basis"}


def _sj(tmp: Path, case: str, jastrow: str) -> dict[str, Path]:
    """Trial-function inputs as the converter writes them, from the case's Slater and Jastrow files."""
    path = tmp / "wf_src" / "qw.wf"
    path.parent.mkdir(exist_ok=True)
    path.write_text(slater_jastrow("qw.slater", jastrow))
    return {"qwalk_wavefunction": path, "qwalk_slater": CASES / case / "qw.slater",
            "qwalk_jastrow": CASES / case / jastrow}


def _si_slater(tmp: Path, mo_type: str) -> dict[str, Path]:
    orbitals = Orbitals(complex=True, mo_type=mo_type, magnify=1, nmo=4, orbfile="qw_111.orb",
                        basis_file="qw.basis")
    slater = Slater(orbitals=orbitals, detwt=[1.0], states=[([1, 2, 3, 4], [1, 2, 3, 4])])
    (tmp / "wf_src").mkdir(exist_ok=True)
    slater.write(tmp / "wf_src" / "qw.slater")
    return {"qwalk_wavefunction": tmp / "wf_src" / "qw.slater"}


SI = {"qwalk_system": "qw_111.sys", "qwalk_orb": "qw_111.orb", "qwalk_basis": "qw.basis"}
WFOUT = {"qwalk_wavefunction": "qw.linear.wfout"}
MakeWf = Callable[[Path], dict[str, Path]]
REPRODUCED: list[tuple[str, str, Callable[[], Any], dict[str, str], MakeWf | None]] = [
    # case, recorded input, writer, inputs from the case folder, trial function made in tmp (or None)
    ("dmc_h2", "qw.dmc", lambda: DMCWriter(timestep=0.02, nblock=20, nconfig=256, save_trace="qw.dmc.trace"),
     {**H2, **WFOUT}, None),
    ("killed_sigkill_dmc_h2", "qw.dmc", lambda: DMCWriter(timestep=0.02, nblock=1000, nconfig=256),
     {**H2, **WFOUT}, None),
    ("repo_h_dmc", "qw.dmc", lambda: DMCWriter(timestep=0.005, nblock=80),
     {**H2, "qwalk_wavefunction": "qw.slater"}, None),
    ("repo_h_vmc", "qw.hf", lambda: VMCWriter(nstep=1000), {**H2, "qwalk_wavefunction": "qw.slater"}, None),
    ("vmc_h2_sj", "qw.vmc", lambda: VMCWriter(nconfig=100, nblock=20, nstep=10), H2,
     lambda t: _sj(t, "vmc_h2_sj", "qw.jast2")),
    ("vmc_h2_single_block", "qw.vmc", lambda: VMCWriter(nconfig=10, nblock=1, nstep=10),
     {**H2, "qwalk_wavefunction": "qw.slater"}, None),
    ("vmc_h2_large_errorbar", "qw.vmc", lambda: VMCWriter(nconfig=1, nblock=4, nstep=3),
     {**H2, "qwalk_wavefunction": "qw.slater"}, None),
    ("vmc_h2_randomseed/run1", "qw.vmc",
     lambda: VMCWriter(nconfig=20, nblock=5, nstep=10, randomseed=(1234, 5678)),
     {**H2, **WFOUT}, None),
    ("pyscf_lih_ccecp_vmc_slater", "qw.vmc", lambda: VMCWriter(nconfig=100, nblock=20, nstep=20),
     {**H2, "qwalk_wavefunction": "qw.slater"}, None),
    ("pyscf_lih_vmc_sj", "qw.vmc", lambda: VMCWriter(nconfig=100, nblock=20, nstep=20), H2,
     lambda t: _sj(t, "pyscf_lih_vmc_sj", "qw.jast2")),
    ("pyscf_h2_pbc_gamma_vmc", "qw.vmc", lambda: VMCWriter(nconfig=50, nblock=10, nstep=10),
     {"qwalk_system": "qw_0.sys", "qwalk_orb": "qw_0.orb", "qwalk_basis": "qw.basis",
      "qwalk_wavefunction": "qw_0.slater"}, None),
    ("si_vmc_short", "qw.vmc", lambda: VMCWriter(nconfig=8, nblock=10, nstep=10), SI,
     lambda t: _si_slater(t, "CUTOFF_MO")),
    ("repo_si_vmc_111_blas", "qw_111.blas.hf", lambda: VMCWriter(), SI, lambda t: _si_slater(t, "BLAS_MO")),
    ("opt_variance_h2", "qw.opt",
     lambda: OptimizeWriter(iterations=10, nconfig=500, repeats=2, final_vmc_nblock=0), H2,
     lambda t: _sj(t, "opt_variance_h2", "qw.jast2")),
    ("linear_h2", "qw.linear",
     lambda: LinearWriter(total_nstep=2048, total_fit=1024, iterations=4, final_vmc_nblock=0), H2,
     lambda t: _sj(t, "linear_h2", "qw.jast2_noopt")),
    ("postprocess_h2_trace", "qw.post",
     lambda: PostprocessWriter(nskip=256, averages=[RegionFluctuation(maxn=4)]),
     {**H2, **WFOUT, "qwalk_trace": "qw.dmc.trace"}, None),
]


def _write(tmp: Path, case: str, writer: Any, inputs: dict[str, str], wf: dict[str, Path] | None) -> Path:
    paths = {**{name: CASES / case / file for name, file in inputs.items()}, **(wf or {})}
    run = tmp / "run"
    run.mkdir(exist_ok=True)
    files = writer.write(run, paths)
    assert files[0] == writer.qwalk_run and all((run / f).is_file() for f in files)
    return run / writer.qwalk_run


@pytest.mark.parametrize("case, recorded, make, inputs, wf", REPRODUCED, ids=[r[0] for r in REPRODUCED])
def test_writer_reproduces_recorded_input(tmp_path: Path, case: str, recorded: str, make: Callable[[], Any],
                                          inputs: dict[str, str], wf: MakeWf | None) -> None:
    written = _write(tmp_path, case, make(), inputs, wf(tmp_path) if wf else None)
    assert syntax.compare(syntax.load(CASES / case / recorded), syntax.load(written)) == []


def test_compare_sees_a_changed_option(tmp_path: Path) -> None:
    written = _write(tmp_path, "dmc_h2", DMCWriter(timestep=0.01, nblock=20, nconfig=256,
                                                   save_trace="qw.dmc.trace"), {**H2, **WFOUT}, None)
    diffs = syntax.compare(syntax.load(CASES / "dmc_h2" / "qw.dmc"), syntax.load(written))
    assert len(diffs) == 1 and "0.02" in diffs[0] and "0.01" in diffs[0]


@pytest.mark.parametrize("writer", [
    VMCWriter(nconfig=10, nblock=5, nstep=4, randomseed=(3, 4), averages=[RegionFluctuation(maxn=3)],
              dynamics="unr", label="vmcx"),
    DMCWriter(timestep=0.01, tmoves=True, save_trace="t.trace", readconfig="x.config"),
    OptimizeWriter(iterations=3, repeats=2, minfunction="mixed", mixing=0.9),
    LinearWriter(total_nstep=100, minimum_psi0=0.5, uncorrelated_evaluation=True),
    PostprocessWriter(nskip=3, averages=[
        TBDMBasis(orbitals=Orbitals(nmo=2, orbfile="a.orb", basis_file="a.basis"), states=[1, 2],
                  mode="obdm")]),
    ConvertWriter(jastrow="threebody", source="mcscf", ci_threshold=0.01),
], ids=lambda w: type(w).__name__)
def test_writer_round_trips_through_model_dump(writer: Any) -> None:
    again = type(writer)(**writer.model_dump())
    assert again == writer and again.model_dump() == writer.model_dump()


def test_methods_table_and_shared_reader_options() -> None:
    assert set(METHODS) == {"convert", "vmc", "dmc", "optimize", "linear", "postprocess"}
    reader_options = {"run_id": None, "method": "vmc", "target_error": 0.01, "min_blocks": 5, "warmup": 2}
    for name, (writer, reader) in METHODS.items():
        reader(**reader_options)
        clash = set(writer.model_fields) & (set(reader.model_fields) - {"run_id"})
        assert not clash, f"{name}: writer fields named like reader options: {clash}"
        assert writer.model_fields["run_id"].default == "qw"
    with pytest.raises(PlanError, match="vmcc"):        # case fail_unknown_method
        get_method("qwalk", "vmcc")


# ------------------------------------------------------------------ refusals (recorded input mistakes)
@pytest.mark.parametrize("cls, options, match", [
    (DMCWriter, {"nblock": 5, "nconfig": 64}, "timestep"),                         # fail_dmc_missing_timestep
    (VMCWriter, {"nconfig": 20, "nblok": 5, "nstep": 10}, "nblok"),      # fail_misspelled_keyword_ignored
    (VMCWriter, {"nconfig": 20, "timestpe": 0.5}, "timestpe"),
    (VMCWriter, {"nblock": "five"}, "nblock"),                                     # fail_nonnumeric_value
    (VMCWriter, {"nconfig": 1, "nblock": 3, "nstep": 1}, "SIGFPE"),      # fail_sigfpe_one_sample_per_block
    (VMCWriter, {"nconfig": 1}, None),
    (DMCWriter, {"timestep": 1.0, "nconfig": 1}, "SIGFPE"),
    (DMCWriter, {"timestep": 0.01, "tmoves": True, "tmovessc": True}, "exclude"),
    (VMCWriter, {"randomseed": (0, 3)}, "positive"),
    (OptimizeWriter, {"mixing": 0.5}, "mixed"),
    (VMCWriter, {"run_id": "../x"}, "run_id"),
])
def test_bad_options_are_refused_naming_the_option(cls: Any, options: dict[str, Any],
                                                    match: str | None) -> None:
    if match is None:
        assert cls.build("vmc", options).nconfig == 1      # 1 walker x 100 steps is fine
        return
    with pytest.raises(OptionError, match=match):
        cls.build("step", options)


def test_string_options_must_be_single_words(tmp_path: Path) -> None:
    inputs = {name: CASES / "vmc_h2_sj" / f for name, f in {**H2, "qwalk_wavefunction": "qw.slater"}.items()}
    with pytest.raises(OptionError, match="one word"):
        OptimizeWriter(pseudotemp="a } b").write(tmp_path, inputs)


def _inputs(case: str, **names: str) -> dict[str, Path]:
    return {name: CASES / case / file for name, file in names.items()}


def test_dmc_refuses_more_walkers_than_the_vmc_stored(tmp_path: Path) -> None:
    case = "fail_dmc_not_enough_configs_h2"
    inputs = _inputs(case, qwalk_system="qw.sys", qwalk_wavefunction="qw.linear.wfout", qwalk_orb="qw.orb",
                     config="qw.vmcdmc.config")
    with pytest.raises(OptionError, match=r"nconfig \(default 2048\) exceeds the 256 walkers"):
        DMCWriter(timestep=0.02, nblock=10).write(tmp_path, inputs)
    DMCWriter(timestep=0.02, nblock=10, nconfig=256).write(tmp_path, inputs)
    assert syntax.load(tmp_path / "qw.dmc").section("METHOD").get("READCONFIG") == "qw.vmcdmc.config"


def test_linear_refuses_optimizebasis_jastrow(tmp_path: Path) -> None:
    inputs = _inputs("fail_linear_optimizebasis_h2", qwalk_system="qw.sys", qwalk_wavefunction="qw.opt.wfout",
                     qwalk_orb="qw.orb")
    with pytest.raises(OptionError, match="OPTIMIZEBASIS"):
        LinearWriter(iterations=4).write(tmp_path, inputs)
    OptimizeWriter(iterations=4).write(tmp_path, inputs)     # variance optimization accepts it
    assert (tmp_path / "qw.optimize").is_file()


def test_optimize_refuses_a_wave_function_without_parameters(tmp_path: Path) -> None:
    inputs = _inputs("fail_optimize_no_parameters", qwalk_system="qw.sys", qwalk_wavefunction="qw.slater",
                     qwalk_orb="qw.orb", qwalk_basis="qw.basis")
    with pytest.raises(OptionError, match="no parameters"):
        OptimizeWriter(iterations=5, nconfig=100).write(tmp_path, inputs)


def test_missing_orbfile_and_include_are_refused(tmp_path: Path) -> None:
    case = "fail_missing_orbfile"
    (tmp_path / "a").mkdir()
    with pytest.raises(OptionError, match="ORBFILE qw.orb"):
        VMCWriter(nconfig=20).write(tmp_path / "a", _inputs(case, qwalk_system="qw.sys",
                                                             qwalk_wavefunction="qw.linear.wfout"))
    wf = tmp_path / "qw.wf"
    wf.write_text(slater_jastrow("qw.slater", "qw.jast2"))     # neither file given
    (tmp_path / "b").mkdir()
    with pytest.raises(OptionError, match="INCLUDE qw.slater"):
        VMCWriter().write(tmp_path / "b", {"qwalk_system": CASES / case / "qw.sys", "qwalk_wavefunction": wf})
    with pytest.raises(OptionError, match="qw.sys.missing"):          # fail_missing_include
        VMCWriter().write(tmp_path / "b", {"qwalk_system": CASES / case / "qw.sys.missing",
                                           "qwalk_wavefunction": wf})
    with pytest.raises(OptionError, match="qwalk_wavefunction"):
        VMCWriter().write(tmp_path / "b", {"qwalk_system": CASES / case / "qw.sys"})


def test_no_system_and_unbalanced_braces_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "src"
    broken.mkdir()
    (broken / "qw.nosys").write_text("PSEUDO { H AIP 6 }\n")
    (broken / "qw.brace").write_text((CASES / "fail_syntax_unbalanced_brace" / "qw.sys").read_text() + "}\n")
    base = _inputs("vmc_h2_sj", qwalk_wavefunction="qw.slater", qwalk_orb="qw.orb", qwalk_basis="qw.basis")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(OptionError, match="no SYSTEM section"):           # fail_no_system_section
        VMCWriter().write(run, {**base, "qwalk_system": broken / "qw.nosys"})
    with pytest.raises(OptionError, match="unbalanced braces"):           # fail_syntax_unbalanced_brace
        VMCWriter().write(run, {**base, "qwalk_system": broken / "qw.brace"})


def test_nspin_states_mismatch_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    recorded = (CASES / "vmc_h2_sj" / "qw.sys").read_text()
    (src / "qw.sys").write_text(recorded.replace("NSPIN { 1  1 }", "NSPIN { 2  1 }"))
    inputs = {**_inputs("vmc_h2_sj", qwalk_wavefunction="qw.slater", qwalk_orb="qw.orb",
                        qwalk_basis="qw.basis"),
              "qwalk_system": src / "qw.sys"}
    (tmp_path / "run").mkdir()
    with pytest.raises(OptionError, match="STATES lists 2 orbitals but NSPIN"):
        VMCWriter().write(tmp_path / "run", inputs)
    orbitals = Orbitals(nmo=2, orbfile="qw.orb", basis_file="qw.basis")
    with pytest.raises(ValueError, match="NSPIN"):
        Slater(orbitals=orbitals, detwt=[1.0], states=[([1], [1])], nspin=(2, 0))
    with pytest.raises(ValueError, match="DETWT"):
        Slater(orbitals=orbitals, detwt=[1.0, 0.5], states=[([1], [1])])


# ------------------------------------------------------------------ continuation
def _killed_run(tmp_path: Path, case: str, method: str) -> Path:
    """A run directory as a killed attempt leaves it (recorded files, named as our run id)."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("qw.sys", "qw.orb", "qw.basis", "qw.linear.wfout"):
        shutil.copy(CASES / case / name, run / name)
    for suffix in (".log", ".config"):
        shutil.copy(CASES / case / f"qw.{method}{suffix}", run / f"qw.{method}{suffix}")
    return run


def test_vmc_continuation_counts_logged_blocks_and_reads_own_config(tmp_path: Path) -> None:
    run = _killed_run(tmp_path, "killed_sigint_vmc_h2", "vmc")             # 58 blocks logged, then SIGINT
    inputs = {name: run / f for name, f in {**H2, **WFOUT}.items()}
    writer = VMCWriter(nconfig=100, nblock=100, nstep=10)
    writer.write(run, inputs)
    method = syntax.load(run / "qw.vmc").section("METHOD")
    assert method.get("NBLOCK") == "42" and method.get("READCONFIG") is None
    writer.extend(ReadResult(verdict=Verdict.incomplete, more={"nblock": 200}))
    writer.write(run, inputs)
    method = syntax.load(run / "qw.vmc").section("METHOD")
    assert (writer.nblock, method.get("NBLOCK"), method.get("READCONFIG")) == (200, "142", "qw.vmc.config")


def test_dmc_extend_from_the_real_reader(tmp_path: Path) -> None:
    from autogenv2.codes.qwalk.reader import QWalkReader

    case = "killed_sigkill_dmc_h2"
    run = _killed_run(tmp_path, case, "dmc")
    writer = DMCWriter(timestep=0.02, nblock=1000, nconfig=256)
    inputs = {name: run / f for name, f in {**H2, **WFOUT}.items()}
    writer.write(run, inputs)
    shutil.copy(CASES / case / "qw.dmc.o", run / "qw.dmc.o")
    result = QWalkReader(run_id="qw.dmc").read(run, exit_code=-9)
    assert result.verdict is Verdict.incomplete and result.outputs == {"config": "qw.dmc.config"}
    writer.extend(result)
    writer.write(run, inputs)
    method = syntax.load(run / "qw.dmc").section("METHOD")
    done = writer.blocks_done(run)
    assert done > 0 and method.get("READCONFIG") == "qw.dmc.config"
    assert int(method.get("NBLOCK")) == writer.nblock - done


def test_optimizer_extend_resumes_from_its_last_wfout(tmp_path: Path) -> None:
    case = "opt_variance_h2"
    inputs = {**_inputs(case, qwalk_system="qw.sys", qwalk_orb="qw.orb", qwalk_basis="qw.basis"),
              **_sj(tmp_path, case, "qw.jast2")}
    run = tmp_path / "run"
    run.mkdir()
    writer = OptimizeWriter(iterations=10, nconfig=500)
    writer.write(run, inputs)
    assert syntax.load(run / "qw.optimize", expand=False).section("TRIALFUNC").get("include") == "qw.wf"
    shutil.copy(CASES / case / "qw.opt.wfout", run / "qw.optimize.wfout")   # the last attempt's result
    writer.extend(ReadResult(verdict=Verdict.incomplete, more={"iterations": 20}))
    writer.write(run, inputs)
    trialfunc = syntax.load(run / "qw.optimize", expand=False).section("TRIALFUNC")
    assert writer.iterations == 20 and trialfunc.get("include") == "qw.optimize.wfin"
    assert (run / "qw.optimize.wfin").read_text() == (CASES / case / "qw.opt.wfout").read_text()


def test_upstream_file_named_like_own_output_is_renamed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    inputs = {**_inputs("killed_sigint_vmc_h2", qwalk_system="qw.sys", qwalk_wavefunction="qw.linear.wfout",
                        qwalk_orb="qw.orb", config="qw.vmc.config")}
    VMCWriter(nconfig=100).write(run, inputs)
    assert syntax.load(run / "qw.vmc").section("METHOD").get("READCONFIG") == "input_qw.vmc.config"
    assert not (run / "qw.vmc.config").exists()


# ------------------------------------------------------------------ command
def test_command_uses_env_then_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGENV2_QWALK", sys.executable)
    argv = DMCWriter(timestep=0.1, run_id="h2").command()
    assert argv[-2:] == [sys.executable, "h2.dmc"] and argv[:3] == ["stdbuf", "-oL", "-eL"]
    monkeypatch.setenv("AUTOGENV2_QWALK", str(tmp_path / "nothing"))
    with pytest.raises(AutogenError, match="AUTOGENV2_QWALK"):
        VMCWriter().command()
    monkeypatch.delenv("AUTOGENV2_QWALK")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AutogenError, match="not found"):
        VMCWriter().command()


# ------------------------------------------------------------------ file models against recorded files
def test_system_and_pseudo_models_match_recorded_files() -> None:
    lih = System(nspin=(1, 1), atoms=[Atom(label="Li", charge=1, coor=(0, 0, 0)),
                                      Atom(label="H", charge=1, coor=(0, 0, 3.015435976968469))],
                 pseudos=[Pseudo(label="Li", channels=[
                     [(2, 1.33024777689591, 6.75286789026804)],
                     [(1, 15.0, 1.0), (2, 1.80605426846072, -1.24272969818004),
                      (3, 15.0479971422127, 15.0)]])])
    assert syntax.compare(syntax.load(CASES / "pyscf_lih_ccecp_vmc_slater" / "qw.sys"), lih.section()) == []
    lattice = ((6.2842897565437, 3.6282363826061, 0.0), (0.0, 7.2564727652122, 0.0),
               (2.0947632521812, 3.6282363826061, 5.924885202391))
    si = System(kind="periodic", nspin=(4, 4), latticevec=lattice, origin=(0, 0, 0), kpoint=(0.5, 0.5, 0.5),
                cutoff_divider=0.26382867563501017,
                atoms=[Atom(label="si", charge=4.0,
                            coor=(-2.0947632521812, -3.6282363826061, -1.4812213005977)),
                       Atom(label="si", charge=4.0, coor=(0, 0, 0))],
                pseudos=[Pseudo(label="si", aip=12, channels=[
                    [(2, 2.26686403, 21.20531613)], [(2, 2.11659661, 15.43693603)],
                    [(1, 1.80721061, 4.0), (3, 9.99633089, 7.22884246), (2, 2.50043232, -13.0672559)]])])
    assert syntax.compare(syntax.load(CASES / "si_vmc_short" / "qw_111.sys"), si.section()) == []
    with pytest.raises(ValueError, match="latticevec"):
        System(kind="periodic", nspin=(1, 1), atoms=lih.atoms)
    with pytest.raises(ValueError, match="no ATOM"):
        System(nspin=(1, 1), atoms=lih.atoms[1:], pseudos=lih.pseudos)


def test_wavefunction_models_match_recorded_files(tmp_path: Path) -> None:
    case = CASES / "vmc_h2_sj"
    orbitals = Orbitals(nmo=1, orbfile="qw.orb", basis_file="qw.basis")
    slater = Slater(orbitals=orbitals, detwt=[1.0], states=[([1], [1])])
    assert syntax.compare(syntax.load(case / "qw.slater", expand=False), slater.section()) == []
    basis = BasisFile(bases=[AtomBasis(label="H", shells=[
        Shell(symbol="s", exponents=[13.01, 1.962, 0.4446], coefficients=[0.033499, 0.234801, 0.813683]),
        Shell(symbol="s", exponents=[0.122], coefficients=[1.0]),
        Shell(symbol="p", exponents=[0.727], coefficients=[1.0])])])
    assert syntax.compare(syntax.load(case / "qw.basis"), basis.section()) == []
    jastrow = Jastrow(labels=["H"], threebody=True, optimizebasis=True)
    assert syntax.compare(syntax.load(case / "qw.jast2"), jastrow.section()) == []
    plain = Jastrow(labels=["H"], threebody=True)
    assert syntax.compare(syntax.load(CASES / "linear_h2" / "qw.jast2_noopt"), plain.section()) == []
    assert syntax.compare(syntax.load(case / "qw.jast2"), plain.section()) != []
    coefficients, per_center = read_orbfile(case / "qw.orb")
    assert coefficients.shape == (10, 10) and per_center == [5, 5]
    write_orbfile(tmp_path / "x.orb", coefficients, per_center)
    again, _ = read_orbfile(tmp_path / "x.orb")
    assert (again == coefficients).all()
    with pytest.raises(ValueError, match="3 values"):
        Jastrow(labels=["H"], twobody=[0.1])


def test_attempt_limit_sizes_the_attempt_and_the_reader_wants_the_rest(tmp_path: Path) -> None:
    """Walltime sizing: NBLOCK stops this attempt at attempt_limit; the Reader (told the total by the
    writer's hints) calls a clean finish short of the total incomplete and asks for the rest."""
    from autogenv2.codes.qwalk.reader import QWalkReader

    run = _killed_run(tmp_path, "killed_sigint_vmc_h2", "vmc")             # 58 blocks logged
    inputs = {name: run / f for name, f in {**H2, **WFOUT}.items()}
    writer = VMCWriter(nconfig=100, nblock=100, nstep=10, attempt_limit=70)
    writer.write(run, inputs)
    assert syntax.load(run / "qw.vmc").section("METHOD").get("NBLOCK") == "12"   # 70 - 58
    assert writer.reader_hints() == {"run_id": "qw.vmc", "total_blocks": 100}
    reader = QWalkReader(**writer.reader_hints())
    result = reader.read(run, exit_code=-2)                                # the 58 blocks, killed
    assert result.verdict is Verdict.incomplete and result.more == {"nblock": 100}
    writer.attempt_limit = 150                                             # a limit beyond the total
    writer.write(run, inputs)
    assert syntax.load(run / "qw.vmc").section("METHOD").get("NBLOCK") == "42"
    assert VMCWriter(nconfig=100, nstep=10).reader_hints() == {"run_id": "qw.vmc", "total_blocks": 100}


@pytest.mark.parametrize("make", [
    lambda: LinearWriter(iterations=3, repeats=2),
    lambda: OptimizeWriter(iterations=3, final_vmc_nblock=30, final_vmc_nconfig=50)])
def test_optimizers_end_with_a_vmc_of_what_they_hand_on(tmp_path: Path, make: Callable[[], Any]) -> None:
    """QWalk samples an optimizer's .wfout in the methods after it: that VMC gives the element's energy."""
    writer = make()
    _write(tmp_path, "linear_h2", writer, H2, _sj(tmp_path, "linear_h2", "qw.jast2_noopt"))
    methods = syntax.load(tmp_path / "run" / writer.qwalk_run).sections("METHOD")
    assert [m.type_word for m in methods] == [writer.method.upper()] * writer.repeats + ["VMC"]
    vmc = methods[-1]
    assert (vmc.get("NBLOCK"), vmc.get("NSTEP"), vmc.get("NCONFIG")) == (
        str(writer.final_vmc_nblock), str(writer.final_vmc_nstep), str(writer.final_vmc_nconfig))
