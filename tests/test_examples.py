"""Each example plan, shrunk, run for real (PySCF + PyQMC); the report's numbers recomputed by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autogenv2 import results
from autogenv2.report import build_report
from conftest import REPO, autogenv2

pytestmark = pytest.mark.slow

SHRINK = {
    "h2_timestep": [("nconfig = 300", "nconfig = 100"), ("max_iterations = 5", "max_iterations = 2"),
                    ("tolerance_sigmas = 4.0", "tolerance_sigmas = 100.0\nwindow = 2"),
                    ("nblocks = 120", "nblocks = 30"), ("warmup = 20", "warmup = 5"),
                    ("[0.02, 0.05, 0.1, 0.2]", "[0.05, 0.1, 0.2]")],
    "h2_scan": [("nconfig = 200", "nconfig = 100"), ("max_iterations = 4", "max_iterations = 2"),
                ("tolerance_sigmas = 4.0", "tolerance_sigmas = 100.0\nwindow = 2"),
                ("nblocks = 80", "nblocks = 25"), ("warmup = 15", "warmup = 5"),
                ("[1.0, 1.4, 2.0, 3.0]", "[1.0, 1.4, 2.0]")],
    "h2_pbc_twist": [("nconfig = 200", "nconfig = 100"), ("max_iterations = 4", "max_iterations = 2"),
                     ("tolerance_sigmas = 4.0", "tolerance_sigmas = 100.0\nwindow = 2"),
                     ("nblocks = 60", "nblocks = 25"), ("warmup = 10", "warmup = 5")],
}


def run_example(name: str, tmp_path: Path) -> tuple[Path, dict]:
    """Copy, shrink, run to completion and report; returns the runs root and report.json."""
    text = (REPO / "examples" / name / "plan.toml").read_text()
    for old, new in SHRINK[name]:
        assert old in text, f"{name}: {old!r} no longer in the example; update SHRINK"
        text = text.replace(old, new)
    (tmp_path / "plan.toml").write_text(text)
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paths = build_report(tmp_path / "runs", tmp_path / "report")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    return tmp_path / "runs", json.loads((tmp_path / "report" / "report.json").read_text())["sections"]


def test_h2_timestep_extrapolation_matches_polyfit(tmp_path: Path) -> None:
    root, sections = run_example("h2_timestep", tmp_path)
    frame = results(root)
    assert set(frame["state"]) == {"done"}
    dmc = frame[frame["method"] == "dmc"].copy()
    dmc["tstep"] = [p["tstep"] for p in dmc["parameters"]]
    dmc = dmc.sort_values("tstep")
    coef, cov = np.polyfit(dmc["tstep"], dmc["energy"], 1, w=1 / dmc["error"], cov="unscaled")
    fit = sections["timestep"][0]["fits"]["linear"]
    assert fit["value"] == pytest.approx(coef[-1], abs=1e-10)
    assert fit["error"] == pytest.approx(np.sqrt(cov[-1, -1]), rel=1e-8)
    assert -1.22 < fit["value"] < -1.13  # exact -1.17447; short runs
    assert f"{fit['value']:.6f}" in (tmp_path / "report" / "report.html").read_text()
    assert (tmp_path / "report" / "timestep_h2.png").exists()
    assert len(sections["blocks"]) == 3 and len(sections["optimization"]) == 1


def test_h2_scan_curve_matches_results(tmp_path: Path) -> None:
    root, sections = run_example("h2_scan", tmp_path)
    frame = results(root)
    assert set(frame["state"]) == {"done"}
    scan = {s["title"]: s for s in sections["scan"]}["dmc (pyqmc dmc)"]
    assert scan["xlabel"] == "r" and scan["x"] == [1.0, 1.4, 2.0]  # the scan variable the plan recorded
    dmc = frame[frame["element"] == "dmc"].set_index("job")
    assert scan["energy"] == [dmc.loc[job, "energy"] for job in scan["jobs"]]
    scf = frame[frame["element"] == "scf"].set_index("job")["energy"]
    assert scf["r1.4"] == pytest.approx(-1.1287094, abs=1e-6)
    assert scf["r1.4"] < scf["r1.0"] and scf["r1.4"] < scf["r2.0"]  # the RHF minimum is near 1.4 bohr
    assert (tmp_path / "report" / "scan.png").exists()


def test_h2_pbc_twist_average_by_hand(tmp_path: Path) -> None:
    root, sections = run_example("h2_pbc_twist", tmp_path)
    frame = results(root)
    assert set(frame["state"]) == {"done"}
    twists = sorted(json.loads((root / "h2cell" / f"dmc-twist{i}" / "twist.json").read_text())["kpoint"][0]
                    for i in (0, 1))
    assert twists == pytest.approx([0.0, np.pi / 5.0])  # the 2x1x1 mesh of a 5 bohr cell
    dmc = frame[frame["method"] == "dmc"].sort_values("element")
    weights = np.array([0.5, 0.5])
    mean = float(np.dot(weights, dmc["energy"]))
    error = float(np.sqrt(np.dot(weights**2, dmc["error"] ** 2)))
    average = sections["twists"][0]
    assert average["energy"] == pytest.approx(mean, abs=1e-12)
    assert average["error"] == pytest.approx(error, rel=1e-10)
    assert average["weights"] == [0.5, 0.5] and average["complete"]
    assert -1.5 < mean < -1.2
    assert f"{mean:.6f}" in (tmp_path / "report" / "report.html").read_text()
