"""The report draws QWalk runs through the same code path as PyQMC's: block traces from the .log with
the warm-up cut, LINEAR convergence, and DMC time-step extrapolation over QWalk's ``timestep`` option.

Data: recorded real QWalk runs (tests/data/qwalk/cases) placed as elements of a status tree, with the
results their Reader gives. The end-to-end runs of examples/qwalk_h2 and examples/qwalk_h2_timestep with
the real binary are in tests/test_qwalk_plan_real.py.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from autogenv2.codes import get_method
from autogenv2.codes.qwalk import logparse as lp
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.plan import Step, load_plan
from autogenv2.report import build_report
from autogenv2.states import State
from autogenv2.status import ElementStatus, JobStatus
from conftest import QWALK_CASES, REPO
from test_report import element, write_job


def _element(root: Path, case: str, name: str, method: str, options: dict[str, float]) -> object:
    target = root / "h2" / name
    shutil.copytree(QWALK_CASES / case, target)
    result = QWalkReader().read(target, 0)
    return element(name, method, options, result.results, code="qwalk")


def test_qwalk_traces_optimization_and_timestep_figures(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    (root / "h2").mkdir(parents=True)
    linear = _element(root, "linear_h2", "linear", "linear", {"total_nstep": 2048})
    dmcs = [_element(root, "dmc_h2", f"dmc-timestep{t:g}", "dmc", {"timestep": t})
            for t in (0.01, 0.02, 0.04)]
    for i, dmc in enumerate(dmcs):  # one recorded DMC thrice: give each its own energy for the fit
        dmc.result["energy"] += 0.002 * i  # type: ignore[attr-defined]
    shutil.rmtree(root / "h2")
    job_dir = write_job(root, "h2", [linear, *dmcs])  # type: ignore[list-item]
    shutil.copytree(QWALK_CASES / "linear_h2", job_dir / "linear")
    for dmc in dmcs:
        shutil.copytree(QWALK_CASES / "dmc_h2", job_dir / dmc.name)  # type: ignore[attr-defined]
    names = {p.name for p in build_report(root, tmp_path / "out")}
    assert {"timestep_h2.png", "optimization.png", "blocks_1.png"} <= names
    sections = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]

    series = lp.parse_log(QWALK_CASES / "dmc_h2" / "qw.dmc.log").series["dmc"]
    blocks = sections["blocks"]
    assert [b["label"] for b in blocks] == [f"h2/dmc-timestep{t:g}" for t in (0.01, 0.02, 0.04)]
    assert all(b["blocks"] == series.nblocks == 20 and b["warmup"] == 10 for b in blocks)  # 10 au

    (opt,) = sections["optimization"]
    steps = linear.result["iterations"]  # type: ignore[attr-defined]
    assert opt["label"] == "h2/linear" and opt["energy"] == [s["energy"] for s in steps] and len(steps) == 4

    (fit,) = sections["timestep"]
    assert fit["tstep"] == [0.01, 0.02, 0.04]
    energy = [d.result["energy"] for d in dmcs]  # type: ignore[attr-defined]
    sigma = np.array([d.result["error"] for d in dmcs])  # type: ignore[attr-defined]
    coeffs = np.polyfit([0.01, 0.02, 0.04], energy, 1, w=1 / sigma)
    assert abs(fit["fits"]["linear"]["value"] - coeffs[-1]) < 1e-12



def _plan_report(steps: list[Step], out: Path, key: str) -> tuple[dict[str, Any], list[float]]:
    """Each plan step as a done element holding the recorded DMC (time step stored under ``key``)."""
    root, elements, energies = out / "runs", [], []
    for i, step in enumerate(steps):
        target = root / "h2" / step.name
        shutil.copytree(QWALK_CASES / "dmc_h2", target)
        result = QWalkReader(run_id="qw.dmc", method="dmc").read(target, 0).results
        result["energy"] += 0.002 * i  # one recorded DMC thrice: give each its own energy for the fit
        energies.append(result["energy"])
        spec = step.spec()
        spec["options"][key] = spec["options"].pop("timestep")
        elements.append(ElementStatus(name=step.name, code="qwalk", method="dmc", spec=spec, state=State.done,
                                      result=result))
    JobStatus(job_id="h2", elements=elements).save(root / "h2")
    build_report(root, out / "report")
    return json.loads((out / "report" / "report.json").read_text())["sections"], energies


def test_plan_timestep_steps_reach_the_extrapolation_through_the_writers_declaration(tmp_path: Path) -> None:
    """The three DMC steps of examples/qwalk_h2_timestep (expanded by the plan, spec as the Manager
    stores it) with recorded QWalk DMC blocks reach the time-step fit: the report takes the time step
    from the option QWalk's DMC Writer declares, not from a name it knows. The same elements with the
    time step under PyQMC's name (not an option of QWalk's DMC) give no time-step figure."""
    assert get_method("qwalk", "dmc")[0].timestep_option == "timestep"  # type: ignore[attr-defined]
    plan = load_plan(REPO / "examples" / "qwalk_h2_timestep" / "plan.toml", root=tmp_path / "runs")
    steps = [s for s in plan.jobs[0].steps if s.method == "dmc"]
    assert [s.name for s in steps] == ["dmc-timestep0.01", "dmc-timestep0.02", "dmc-timestep0.04"]

    sections, energies = _plan_report(steps, tmp_path / "a", "timestep")
    (fit,) = sections["timestep"]
    assert fit["tstep"] == [0.01, 0.02, 0.04] and fit["title"] == "h2: dmc energy vs time step"
    assert fit["energy"] == energies
    coeffs = np.polyfit(fit["tstep"], energies, 1, w=1 / np.array(fit["error"]))
    assert abs(fit["fits"]["linear"]["value"] - coeffs[-1]) < 1e-12 and fit["fits"]["linear"]["dof"] == 1
    assert [b["label"] for b in sections["blocks"]] == [f"h2/{s.name}" for s in steps]

    renamed, _ = _plan_report(steps, tmp_path / "b", "tstep")
    assert "timestep" not in renamed and len(renamed["blocks"]) == 3
