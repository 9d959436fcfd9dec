"""The report on synthetic status trees: figures made only from data present, numbers as computed by hand."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from autogenv2.report import bond_length, build_report
from autogenv2.states import State
from autogenv2.status import ElementStatus, JobStatus


def element(name: str, method: str, options: dict[str, Any], result: dict[str, Any], code: str = "pyqmc",
            outputs: dict[str, str] | None = None, state: State = State.done) -> ElementStatus:
    return ElementStatus(name=name, code=code, method=method, spec={"name": name, "options": options},
                         state=state, result=result, outputs=outputs or {})


def write_job(root: Path, job_id: str, elements: list[ElementStatus]) -> Path:
    job_dir = root / job_id
    job_dir.mkdir(parents=True)
    JobStatus(job_id=job_id, elements=elements).save(job_dir)
    return job_dir


TAUS = [0.01, 0.02, 0.04, 0.08]
ENERGIES = [-1.1745, -1.1741, -1.1722, -1.1690]
ERRORS = [0.0006, 0.0005, 0.0004, 0.0004]


@pytest.fixture
def timestep_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    dmc = [element(f"dmc-tstep{t:g}", "dmc", {"tstep": t, "nblocks": 100},
                   {"energy": e, "error": s, "blocks": 100})
           for t, e, s in zip(TAUS, ENERGIES, ERRORS, strict=True)]
    trace = [-1.13, -1.15, -1.16, -1.168]
    scf = element("scf", "rhf", {"atom": "H 0 0 0; H 0 0 1.4"}, {"energy": -1.1287}, "pyscf")
    write_job(root, "h2", [scf,
                           element("opt", "optimize", {"max_iterations": 4},
                                   {"energy": -1.1702, "error": 0.0009, "energy_trace": trace,
                                    "energy_of": "a VMC of the final parameters"}),
                           *dmc])
    return root


def test_timestep_extrapolation_matches_numpy_polyfit(timestep_root: Path, tmp_path: Path) -> None:
    paths = build_report(timestep_root, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"timestep_h2.png", "optimization.png", "report.html", "report.json"} <= names
    assert not any(n.startswith(("twists", "scan", "blocks")) for n in names)  # no data, no figure
    assert all(p.stat().st_size > 0 for p in paths)
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]
    fits = numbers["timestep"][0]["fits"]
    x, y, s = np.array(TAUS), np.array(ENERGIES), np.array(ERRORS)
    for name, order in (("linear", 1), ("quadratic", 2)):
        coef, cov = np.polyfit(x, y, order, w=1 / s, cov="unscaled")
        assert fits[name]["value"] == pytest.approx(coef[-1], abs=1e-12)
        assert fits[name]["error"] == pytest.approx(np.sqrt(cov[-1, -1]), rel=1e-9)
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"{fits['linear']['value']:.6f}" in page and f"{fits['quadratic']['error']:.6f}" in page
    assert "src='timestep_h2.png'" in page and "<img src='/" not in page
    assert numbers["optimization"][0]["energy"] == [-1.13, -1.15, -1.16, -1.168]
    # the energy published is a VMC of the final parameters, not the last iteration's: shown apart
    assert numbers["optimization"][0]["published"] == {
        "energy": -1.1702, "error": 0.0009, "energy_of": "a VMC of the final parameters"}
    assert "published: a VMC of the final parameters" in page and "-1.170200" in page


def test_three_timesteps_give_linear_fit_only(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_job(root, "h2", [element(f"dmc-tstep{t:g}", "dmc", {"tstep": t}, {"energy": e, "error": s})
                           for t, e, s in zip(TAUS[:3], ENERGIES[:3], ERRORS[:3], strict=True)])
    build_report(root, tmp_path / "out")
    fits = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["timestep"][0]["fits"]
    assert set(fits) == {"linear"}


def test_twist_average_by_hand(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    twists = [(0, [0.0, 0, 0], 0.25, -2.40, 0.004), (1, [0.63, 0, 0], 0.75, -2.30, 0.006)]
    write_job(root, "cell", [element(f"dmc-twist{i}", "dmc", {"twist": i, "tstep": 0.02},
                                     {"energy": e, "error": s, "twist": i, "kpoint": k, "twist_weight": w,
                                      "ntwists": 2}) for i, k, w, e, s in twists])
    paths = build_report(root, tmp_path / "out")
    assert "twists_cell.png" in {p.name for p in paths}
    entry = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["twists"][0]
    mean = (0.25 * -2.40 + 0.75 * -2.30) / 1.0
    error = np.sqrt(0.25**2 * 0.004**2 + 0.75**2 * 0.006**2)
    assert entry["energy"] == pytest.approx(mean) and entry["error"] == pytest.approx(error)
    assert entry["energies"] == [-2.40, -2.30] and entry["errors"] == [0.004, 0.006]  # each twist kept too
    assert entry["steps"] == ["dmc-twist0", "dmc-twist1"] and entry["complete"] is True
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"{mean:.6f}" in page and "(0.630, 0.000, 0.000)" in page
    assert "timestep" not in json.loads((tmp_path / "out" / "report.json").read_text())["sections"]


def test_two_twisted_steps_of_one_job_get_a_figure_each(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_job(root, "cell", [element(f"{method}-twist{i}", method, {"twist": i}, {
        "energy": e - i * 0.1, "error": 0.01, "twist": i, "kpoint": [0.63 * i, 0, 0], "twist_weight": 0.5,
        "ntwists": 2}, code="qwalk") for method, e in (("vmc", -1.40), ("dmc", -1.42)) for i in (0, 1)])
    names = {p.name for p in build_report(root, tmp_path / "out")}
    assert {"twists_cell_vmc.png", "twists_cell_dmc.png"} <= names
    twists = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["twists"]
    averages = {entry["title"]: entry["energy"] for entry in twists}
    assert averages == pytest.approx({"cell: vmc energy per twist": -1.45,
                                      "cell: dmc energy per twist": -1.47})


def test_two_timestep_series_of_one_job_get_a_figure_each(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_job(root, "h2", [element(f"{base}-tstep{t}", "dmc", {"tstep": t}, {"energy": e - t, "error": 0.001})
                           for base, e in (("dmc", -1.17), ("dmcbig", -1.18)) for t in (0.01, 0.02, 0.04)])
    names = {p.name for p in build_report(root, tmp_path / "out")}
    assert {"timestep_h2_dmc.png", "timestep_h2_dmcbig.png"} <= names
    series = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["timestep"]
    values = {entry["title"]: entry["fits"]["linear"]["value"] for entry in series}
    assert values == pytest.approx({"h2: dmc energy vs time step": -1.17,
                                    "h2: dmcbig energy vs time step": -1.18})


def test_partial_twist_set_is_flagged(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    done = {"energy": -2.4, "error": 0.01, "twist": 0, "twist_weight": 0.5, "ntwists": 2}
    write_job(root, "cell", [element("dmc-twist0", "dmc", {"twist": 0}, done),
                             element("dmc-twist1", "dmc", {"twist": 1}, {}, state=State.running)])
    build_report(root, tmp_path / "out")
    assert "the average is partial" in (tmp_path / "out" / "report.html").read_text()


def test_scan_uses_bond_length_from_atom_strings(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for r, e_scf, e_dmc in ((1.0, -1.08, -1.12), (1.4, -1.13, -1.174), (2.0, -1.09, -1.137)):
        write_job(root, f"r{r}", [
            element("scf", "rhf", {"atom": f"H 0 0 0; H 0 0 {r}", "unit": "bohr"}, {"energy": e_scf},
                    "pyscf"),
            element("dmc", "dmc", {"tstep": 0.02}, {"energy": e_dmc, "error": 0.001})])
    paths = build_report(root, tmp_path / "out")
    assert "scan.png" in {p.name for p in paths}
    scan = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["scan"]
    by_title = {s["title"]: s for s in scan}
    assert by_title["dmc (pyqmc dmc)"]["x"] == [1.0, 1.4, 2.0]
    assert by_title["dmc (pyqmc dmc)"]["energy"] == [-1.12, -1.174, -1.137]
    assert by_title["scf (pyscf rhf)"]["xlabel"] == "bond length (bohr)"
    assert "-1.174000" in (tmp_path / "out" / "report.html").read_text()


def test_block_trace_marks_warmup(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    result = {"energy": -1.17, "error": 0.001, "warmup": 7, "blocks": 40}
    job_dir = write_job(root, "h2", [element("dmc", "dmc", {"tstep": 0.02}, result,
                                             outputs={"hdf": "dmc/dmc.hdf5"})])
    (job_dir / "dmc").mkdir()
    rng = np.random.default_rng(1)
    with h5py.File(job_dir / "dmc" / "dmc.hdf5", "w") as handle:
        handle["energytotal"] = -1.17 + 0.01 * rng.standard_normal(40)
        handle["weight"] = np.ones(40)
    paths = build_report(root, tmp_path / "out")
    assert "blocks_1.png" in {p.name for p in paths}
    blocks = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["blocks"]
    assert blocks == [{"label": "h2/dmc", "blocks": 40, "warmup": 7, "energy": -1.17, "error": 0.001}]


def test_nothing_to_plot_still_writes_page(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_job(root, "one", [element("scf", "rhf", {"atom": "H 0 0 0; H 0 0 1.4"}, {"energy": -1.1287094},
                                    "pyscf")])
    paths = build_report(root, tmp_path / "out")
    assert [p.name for p in paths] == ["report.html", "report.json"]
    assert "-1.128709" in paths[0].read_text()


@pytest.mark.parametrize("atom, expected", [("H 0 0 0; H 0 0 1.4", 1.4), ("H 0 0 0\nH 0 3 4", 5.0),
                                            ("H 0 0 0", None), ("H 0 0 0; H 0 0 0; H 1 1 1", None),
                                            ("H 0 0 x; H 0 0 1", None)])
def test_bond_length(atom: str, expected: float | None) -> None:
    assert bond_length(atom) == expected


def test_scan_prefers_the_recorded_scan_variables(tmp_path: Path) -> None:
    """Jobs whose options differ first in a seed: the recorded variable, not the seed, is the axis."""
    root = tmp_path / "runs"
    for seed, (lam, energy) in enumerate(((0.5, -1.10), (1.0, -1.15), (2.0, -1.12))):
        job_dir = root / f"lam{lam}"
        job_dir.mkdir(parents=True)
        JobStatus(job_id=f"lam{lam}", variables={"lam": lam}, elements=[
            element("vmc", "vmc", {"seed": 10 + seed, "nblocks": 20}, {"energy": energy, "error": 0.002})
        ]).save(job_dir)
    build_report(root, tmp_path / "out")
    (scan,) = json.loads((tmp_path / "out" / "report.json").read_text())["sections"]["scan"]
    assert scan["xlabel"] == "lam" and scan["x"] == [0.5, 1.0, 2.0]
    assert scan["energy"] == [-1.10, -1.15, -1.12]
