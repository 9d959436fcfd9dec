"""The report of an ensemble: figures (PNG) and one HTML page with the numbers behind them.

``build_report(root, out)`` reads the status files under ``root`` (and, through each run's Reader, the
block and iteration files they point to) and makes only the figures whose data exist. No code is named
here: the time step is the option each Writer declares (``timestep_option``), block series come from
the Reader's ``block_series``, iteration traces from its ``iteration_trace``, twists from the results
a Reader recorded (``twist``, ``twist_weight``):

- energy against DMC time step, with the weighted linear fit (and quadratic with ≥ 4 points)
  and E(τ→0) ± σ (:func:`autogenv2.analysis.extrapolate_timestep`);
- optimization energy per iteration;
- block traces of VMC/DMC runs, with the warm-up cut the Reader used;
- energy against a parameter that varies between jobs (a scan), e.g. the bond length;
- twist energies and their weighted average (:func:`autogenv2.analysis.twist_average`).

The same numbers go to ``report.json`` for scripts and tests.
"""
from __future__ import annotations

import functools
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis
from .codes import Reader, Writer, get_method
from .errors import PlanError
from .results_table import iter_status
from .sampling_reader import SamplingReader
from .states import State
from .templates import value_label

MC_METHODS = ("vmc", "dmc")
OPTIMIZERS = ("optimize", "linear")
MAX_TRACES = 12
"""Block-trace panels per figure; more runs are split over several figures."""


@dataclass
class Run:
    """A finished element, as the report sees it."""

    job: str
    name: str
    code: str
    method: str
    options: dict[str, Any]
    result: dict[str, Any]
    directory: Path
    outputs: dict[str, Path]
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.job}/{self.name}"

    @property
    def measured(self) -> bool:
        return _finite(self.result.get("energy")) and _finite(self.result.get("error"))

    def base(self, key: str) -> str:
        """The step name without the ``foreach`` label of ``key`` (``dmc-tstep0.02`` → ``dmc``)."""
        if key not in self.options:
            return self.name
        return self.name.replace(f"-{key}{value_label(self.options[key])}", "")


@dataclass
class Series:
    """Points of one figure: x, energy, error, one label per point, and what was fitted."""

    title: str
    xlabel: str
    x: list[float]
    energy: list[float]
    error: list[float]
    labels: list[str]
    fits: dict[str, Any] = field(default_factory=dict)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def collect(root: Path) -> list[Run]:
    """Every done element under ``root`` (in job and step order)."""
    runs = []
    for status, _error in iter_status(root):
        if status is None:
            continue
        job_dir = Path(root) / status.job_id
        for element in status.elements:
            if element.state is not State.done:
                continue
            runs.append(Run(job=status.job_id, name=element.name, code=element.code, method=element.method,
                            options=dict(element.spec.get("options", {})), result=dict(element.result),
                            directory=job_dir / element.name,
                            outputs={k: job_dir / v for k, v in element.outputs.items()},
                            variables=dict(status.variables)))
    return runs


def _groups(runs: list[Run], key: str) -> dict[tuple[str, str], list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.job, run.base(key)), []).append(run)
    return groups


@functools.cache
def _classes(code: str, method: str) -> tuple[type[Writer], type[Reader]] | None:
    try:
        return get_method(code, method)
    except PlanError:  # a status written by another version: the run is listed, not drawn
        return None


def timestep_option(run: Run) -> str | None:
    """The option the run's Writer declares as its time step (``timestep_option``), or None."""
    classes = _classes(run.code, run.method)
    option = getattr(classes[0], "timestep_option", None) if classes else None
    return option if isinstance(option, str) else None


def timestep_series(runs: list[Run]) -> list[Series]:
    """DMC energies against the time step its Writer declares, per job and step; fitted when 3 or more
    time steps exist."""
    groups: dict[tuple[str, str], list[Run]] = {}
    tau: dict[str, float] = {}
    for run in runs:
        key = timestep_option(run) if run.method == "dmc" and run.measured else None
        if key is not None and _finite(run.options.get(key)):
            groups.setdefault((run.job, run.base(key)), []).append(run)
            tau[run.label] = float(run.options[key])
    found = []
    for (job, base), group in groups.items():
        if len({tau[r.label] for r in group}) < 2:
            continue
        group.sort(key=lambda r: tau[r.label])
        series = Series(f"{job}: {base} energy vs time step", "DMC time step τ (1/Ha)",
                        [tau[r.label] for r in group], [r.result["energy"] for r in group],
                        [r.result["error"] for r in group], [r.name for r in group])
        for order, name, minimum in ((1, "linear", 3), (2, "quadratic", 4)):
            if len(group) >= minimum:
                try:
                    series.fits[name] = analysis.extrapolate_timestep(series.x, series.energy, series.error,
                                                                      order)
                except analysis.AnalysisError:
                    continue
        found.append(series)
    return found


def twist_series(runs: list[Run]) -> list[Series]:
    """Energies per twist (runs whose Reader recorded a twist) and their weighted average."""
    twisted = [r for r in runs
               if r.measured and "twist" in r.result and _finite(r.result.get("twist_weight"))]
    found = []
    for (job, base), group in _groups(twisted, "twist").items():
        group.sort(key=lambda r: r.result["twist"])
        series = Series(f"{job}: {base} energy per twist", "twist", [float(r.result["twist"]) for r in group],
                        [r.result["energy"] for r in group], [r.result["error"] for r in group],
                        [r.name for r in group])
        weights = [r.result["twist_weight"] for r in group]
        mean, error = analysis.twist_average(series.energy, series.error, weights)
        complete = len(group) == group[0].result.get("ntwists", len(group))
        series.fits["average"] = {"energy": mean, "error": error, "weights": weights, "complete": complete,
                                  "kpoints": [r.result.get("kpoint") for r in group]}
        found.append(series)
    return found


def scan_series(runs: list[Run]) -> list[Series]:
    """Energy of each step against the option that varies between jobs (one series per step and method)."""
    jobs = sorted({r.job for r in runs})
    if len(jobs) < 2:
        return []
    variable = scan_variable(runs, jobs)
    if variable is None:
        return []
    xlabel, xs = variable
    found = []
    by_name: dict[str, list[Run]] = {}
    for run in runs:
        if _finite(run.result.get("energy")) and run.method != "optimize":
            by_name.setdefault(run.name, []).append(run)
    for name, group in by_name.items():
        group = sorted((r for r in group if r.job in xs), key=lambda r: xs[r.job])
        if len(group) < 2:
            continue
        found.append(Series(f"{name} ({group[0].code} {group[0].method})", xlabel, [xs[r.job] for r in group],
                            [r.result["energy"] for r in group],
                            [r.result["error"] if _finite(r.result.get("error")) else float("nan")
                             for r in group],  # an SCF has no error bar: blank, not 0
                            [r.job for r in group]))
    return found


def scan_variable(runs: list[Run], jobs: list[str]) -> tuple[str, dict[str, float]] | None:
    """The first option (in step order) that differs between jobs, as a number per job.

    A scan's recorded variables come first; otherwise a differing two-atom ``atom`` string
    becomes the bond length and a number is used as is.
    """
    recorded = {r.job: r.variables for r in runs}
    for key in recorded.get(jobs[0], {}):  # a scan's own variables, when the plan recorded them
        values = {job: recorded.get(job, {}).get(key) for job in jobs}
        if all(_finite(v) for v in values.values()) and len(set(values.values())) > 1:
            return key, {job: float(v) for job, v in values.items()}  # type: ignore[arg-type]
    first = [r for r in runs if r.job == jobs[0]]
    for step in first:
        others = {r.job: r for r in runs if r.name == step.name}
        if set(others) != set(jobs):
            continue
        for key in step.options:
            values = {job: run.options.get(key) for job, run in others.items()}
            if len({json.dumps(v, sort_keys=True) for v in values.values()}) < 2:
                continue
            if all(_finite(v) for v in values.values()):
                numbers = {job: float(value) for job, value in values.items()}  # type: ignore[arg-type]
                return f"{step.name}.{key}", numbers
            if key == "atom":
                lengths = {job: bond_length(str(v)) for job, v in values.items()}
                if all(v is not None for v in lengths.values()):
                    unit = str(step.options.get("unit", "angstrom"))
                    unit = "bohr" if unit.lower().startswith("b") else "Å"
                    return f"bond length ({unit})", lengths  # type: ignore[return-value]
    return None


def bond_length(atom: str) -> float | None:
    """The distance between the two atoms of a PySCF atom string, or None if it has not two.

    >>> bond_length("H 0 0 0; H 0 0 1.4")
    1.4
    """
    try:
        parts = [part for part in atom.replace("\n", ";").split(";") if part.strip()]
        coords = [np.array([float(x) for x in part.split()[1:4]]) for part in parts]
    except ValueError:
        return None
    if len(coords) != 2 or any(c.size != 3 for c in coords):
        return None
    return round(float(np.linalg.norm(coords[0] - coords[1])), 10)


def optimization_traces(runs: list[Run]) -> list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]:
    """(label, energy, error, published) per iteration of every run whose Reader gives an
    ``iteration_trace`` (PyQMC optimizations, QWalk LINEAR). ``published``: the energy, error and
    ``energy_of`` the run published when that is not an iteration's (a VMC of the final parameters),
    else {}."""
    traces = []
    for run in runs:
        classes = _classes(run.code, run.method) if run.method in OPTIMIZERS else None
        trace = getattr(classes[1], "iteration_trace", None) if classes else None
        if not callable(trace):
            continue
        energy, error = trace(run.result, run.outputs)
        keys = ("energy", "error", "energy_of") if "energy_of" in run.result else ()
        published: dict[str, Any] = {key: run.result[key] for key in keys if key in run.result}
        if energy.size:
            traces.append((run.label, np.asarray(energy, dtype=float), np.asarray(error, dtype=float),
                           published))
    return traces


def _read_blocks(run: Run) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The run's block energies and weights, from its own files as its Reader reads them, or None."""
    classes = _classes(run.code, run.method) if run.method in MC_METHODS else None
    if classes is None or not issubclass(classes[1], SamplingReader):
        return None
    return classes[1].block_series(run.directory, run.outputs, run.method)


def block_traces(runs: list[Run]) -> list[dict[str, Any]]:
    """Block energies (and DMC weights) of every VMC/DMC run whose Reader reads a block series, with the
    warm-up and estimate."""
    traces = []
    for run in runs:
        try:
            blocks = _read_blocks(run)
            if blocks is None:
                continue
            energy, weights = blocks
        except (OSError, KeyError, ValueError):  # unreadable: the status table still lists the run
            continue
        if energy.size:
            traces.append({"label": run.label, "energy": energy, "weights": weights,
                           "warmup": int(run.result.get("warmup", 0)), "mean": run.result.get("energy"),
                           "error": run.result.get("error")})
    return traces


def build_report(root: Path, out: Path) -> list[Path]:
    """Write the figures and ``report.html`` (+ ``report.json``) into ``out``; return their paths."""
    from . import report_plots as plots

    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = collect(root)
    sections: list[plots.Section] = [
        plots.timestep_section(timestep_series(runs), out),
        plots.scan_section(scan_series(runs), out),
        plots.twist_section(twist_series(runs), out),
        plots.optimization_section(optimization_traces(runs), out),
        plots.blocks_section(block_traces(runs), out),
    ]
    sections = [s for s in sections if s.images or s.tables]
    summary = [[r.job, r.name, r.code, r.method, _fmt(r.result.get("energy")), _fmt(r.result.get("error")),
                str(r.result.get("blocks", r.result.get("iterations", "")))] for r in runs]
    page = render_html(root, sections, summary)
    (out / "report.html").write_text(page, encoding="utf-8")
    numbers = {"root": str(root), "sections": {s.key: s.numbers for s in sections}}
    (out / "report.json").write_text(json.dumps(numbers, indent=1, default=_jsonable), encoding="utf-8")
    return [p for s in sections for p in s.images] + [out / "report.html", out / "report.json"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _fmt(value: Any, digits: int = 6) -> str:
    return f"{value:.{digits}f}" if _finite(value) else ""


def render_html(root: Path, sections: list[Any], summary: list[list[str]]) -> str:
    """One self-contained page: images by relative name, every number in a table."""
    where = html.escape(str(root))
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>autogenv2 report: {where}</title>"
              "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
              "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;"
              "text-align:right}th{background:#eee}img{max-width:100%}</style></head><body>"),
             (f"<h1>QMC report</h1><p>Results under <code>{where}</code>. "
              "Energies in Hartree; error bars are the published one standard error: PyQMC VMC from its "
              "walker groups, PyQMC DMC from the scatter of its independent populations, QWalk (and a "
              "DMC of one population) from their blocks (reblocked where they are correlated, else "
              "the plain standard error, times a small-sample factor), optimizations from a VMC of the "
              "parameters handed on (or the last iteration's walker groups, scaled by the trace's "
              "scatter where that is larger).</p>")]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        for header, rows in section.tables:
            parts.append(_table(header, rows))
        parts += [f"<p><img src='{html.escape(p.name)}' alt='{html.escape(p.stem)}'></p>"
                  for p in section.images]
    parts.append("<h2>All finished elements</h2>")
    parts.append(_table(["job", "element", "code", "method", "energy (Ha)", "error (Ha)", "blocks"], summary))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
