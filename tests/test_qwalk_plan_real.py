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
    sections = _report(tmp_path)
    assert [b["label"] for b in sections["blocks"]] == ["h2/vmc", "h2/dmc"]         # QWalk block traces
    assert all(b["blocks"] == frame.loc[b["label"][3:], "blocks"] for b in sections["blocks"])
    (linear,) = sections["optimization"]                                          # LINEAR convergence
    assert linear["label"] == "h2/linear" and len(linear["energy"]) >= 2


def _report(plan_dir: Path) -> dict:
    """`autogenv2 report PLAN` with the CLI; the figures exist and report.json's sections are returned."""
    import json

    proc = autogenv2("report", str(plan_dir / "plan.toml"), "--out", str(plan_dir / "report"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sections = json.loads((plan_dir / "report" / "report.json").read_text())["sections"]
    for key, image in (("blocks", "blocks_1.png"), ("optimization", "optimization.png")):
        assert key in sections and (plan_dir / "report" / image).stat().st_size > 0
    return sections


def test_qwalk_timestep_example_report_extrapolates(tmp_path: Path) -> None:
    """examples/qwalk_h2_timestep: LINEAR -> VMC -> DMC at 3 time steps; the report fits E(tau)."""
    import numpy as np

    shutil.copy(REPO / "examples" / "qwalk_h2_timestep" / "plan.toml", tmp_path / "plan.toml")
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame = results(tmp_path / "runs").set_index("element")
    assert set(frame["state"]) == {"done"}, frame[["state", "reason"]]
    sections = _report(tmp_path)
    assert (tmp_path / "report" / "timestep_h2.png").stat().st_size > 0
    (series,) = sections["timestep"]
    names = [f"dmc-timestep{t}" for t in ("0.01", "0.02", "0.04")]
    assert series["tstep"] == [0.01, 0.02, 0.04]
    energy, error = (frame.loc[names, key].to_numpy(dtype=float) for key in ("energy", "error"))
    coef, cov = np.polyfit([0.01, 0.02, 0.04], energy, 1, w=1 / error, cov="unscaled")
    fit = series["fits"]["linear"]
    assert abs(fit["value"] - coef[-1]) < 1e-12 and abs(fit["error"] - np.sqrt(cov[-1, -1])) < 1e-12
    print(f"QWalk E(tau->0) = {fit['value']:.5f} +/- {fit['error']:.5f} (exact -1.17447)")
    assert abs(fit["value"] - (-1.17447)) < 4 * fit["error"]
    assert {b["label"] for b in sections["blocks"]} == {"h2/vmc", *(f"h2/{n}" for n in names)}


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
nblock = 80
{vmc_resources}

[[steps]]
name = "dmc"
code = "qwalk"
method = "dmc"
timestep = 0.02
nconfig = 100
nstep = 200
nblock = 80
{dmc_resources}

[[jobs]]
id = "h2"
"""
WALLTIME = 4.0
TOTAL = {"vmc": 80, "dmc": 80}
"""Blocks of each step: about twice what one 4 s attempt runs on an idle machine (in CI, 40 VMC blocks
took 4.01 s and 40 DMC blocks 3.87 s, so the first attempt was never killed)."""


@pytest.mark.parametrize("method", ["vmc", "dmc"])
def test_qwalk_attempts_are_sized_to_the_walltime_and_blocks_merge(tmp_path: Path, method: str) -> None:
    """A 4 s walltime: the first attempt is killed mid-run (its blocks count, and the next attempt
    continues from its walkers); later ones stop cleanly before the walltime at the size the Manager
    computed; the result is the merged .log's estimate. On a loaded machine later attempts may still be
    killed (the load changes the rate the size came from; a kill is progress too); at least one must
    end cleanly."""
    from autogenv2 import errorbar
    from autogenv2.codes.qwalk import logparse
    from autogenv2.codes.qwalk.estimates import gosling_warmup
    from autogenv2.status import JobStatus

    limit = f'resources = {{ walltime = "{WALLTIME:g}" }}'
    (tmp_path / "plan.toml").write_text(SIZED_PLAN.format(vmc_resources=limit if method == "vmc" else "",
                                                          dmc_resources=limit if method == "dmc" else ""))
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = JobStatus.load(tmp_path / "runs" / "h2")
    assert status is not None
    element = status.element(method)
    first, *later = element.attempts
    print([(a.blocks, round(a.seconds or 0, 2), a.reason) for a in element.attempts])
    total = TOTAL[method]
    assert first.reason == "walltime" and 0 < (first.blocks or 0) < total
    clean = [a for a in later if a.exit_code == 0 and a.reason == ""]
    assert clean, [(a.blocks, a.reason) for a in later]  # the sizing worked at least once
    # an attempt's seconds include the wrapper's start and its markers (0.1 s idle, more when loaded):
    # one sized to end at the limit may be counted a little past it without having been killed
    assert all((a.seconds or 9) < WALLTIME + 1 for a in clean)
    assert element.result["blocks"] == total == later[-1].blocks
    series = logparse.parse_log(tmp_path / "runs" / "h2" / method / f"qw.{method}.log").series[method]
    assert series.nblocks == total, "no block lost or repeated across the attempts"
    cut = gosling_warmup(series.energy)
    if method == "dmc":  # issue 14: at least 10 au, 3 blocks of 4 au here (timestep 0.02, nstep 200)
        cut = max(cut, 3)
    assert element.result["warmup"] == cut
    est = errorbar.publish(series.energy, series.totweight, cut, sample_variance=series.energyvar)
    assert element.result["energy"] == pytest.approx(est.mean, abs=1e-12)
    assert element.result["error"] == pytest.approx(est.error, abs=1e-12)
    if method == "dmc":  # a Slater-Jastrow-free DMC still lands near the exact energy:
        # the continuation is real
        assert abs(element.result["energy"] - (-1.17447)) < 4 * element.result["error"] + 0.003


def test_casscf_optimize_det_example_lowers_the_casscf_energy(tmp_path: Path) -> None:
    """examples/qwalk_lih_casscf: RHF + CASSCF(2,2) -> convert with OPTIMIZE_DET -> LINEAR -> VMC -> DMC."""
    from pyscf import lib

    from autogenv2.codes.qwalk import syntax

    shutil.copy(REPO / "examples" / "qwalk_lih_casscf" / "plan.toml", tmp_path / "plan.toml")
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame = results(tmp_path / "runs").set_index("element")
    assert set(frame["state"]) == {"done"}, frame[["state", "reason"]]
    job = tmp_path / "runs" / "lih"
    casscf = float(lib.chkfile.load(str(job / "scf" / "mf.chk"), "mcscf/e_tot"))
    assert casscf < frame.loc["scf", "energy"] - 0.01                      # the CAS expansion matters
    assert syntax.load(job / "convert" / "qw.slater", expand=False).has("OPTIMIZE_DET")
    wfout = syntax.load(job / "linear" / "qw.linear.wfout", expand=False)
    assert len([c for s in wfout.walk() for c in s.sections("CSF")]) >= 2  # weights were optimized
    energy, error = frame.loc["vmc", ["energy", "error"]]
    print(f"QWalk VMC after OPTIMIZE_DET LINEAR {energy:.5f} +/- {error:.5f}; CASSCF {casscf:.5f}")
    assert energy < casscf - 3 * error
    method = syntax.load(job / "dmc" / "qw.dmc").section("METHOD")
    assert method.has("TMOVES")                                           # ccECP: T-moves by default
