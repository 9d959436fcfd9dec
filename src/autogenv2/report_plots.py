"""Figures and tables of the report, one function per section (matplotlib, Agg backend)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .report import MAX_TRACES, Series, _fmt


@dataclass
class Section:
    """One part of the report: its figures, tables (header, rows) and numbers for report.json."""

    key: str
    title: str
    images: list[Path] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    numbers: list[dict[str, Any]] = field(default_factory=list)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _points(series: Series) -> list[list[str]]:
    return [[label, f"{x:g}", _fmt(e), _fmt(s)] for label, x, e, s in
            zip(series.labels, series.x, series.energy, series.error, strict=True)]


def timestep_section(found: list[Series], out: Path) -> Section:
    """Energy vs DMC time step with the weighted fits and E(τ→0)."""
    section = Section("timestep", "DMC time-step extrapolation")
    plt = _pyplot()
    for stem, series in zip(_stems(found, " energy vs time step"), found, strict=True):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.errorbar(series.x, series.energy, yerr=series.error, fmt="o", color="k", capsize=3, label="DMC")
        grid = np.linspace(0.0, max(series.x) * 1.05, 100)
        fits: dict[str, Any] = {}
        rows, entry = [], {"title": series.title, "tstep": series.x, "energy": series.energy,
                           "error": series.error, "fits": fits}
        for (name, fit), color in zip(series.fits.items(), ("tab:blue", "tab:red"), strict=False):
            curve = np.polynomial.polynomial.polyval(grid, fit.coefficients)
            ax.plot(grid, curve, color=color, label=f"{name} fit: E(0) = {fit.value:.5f} ± {fit.error:.5f}")
            ax.errorbar([0.0], [fit.value], yerr=[fit.error], fmt="s", color=color, capsize=4)
            rows.append([name, _fmt(fit.value), _fmt(fit.error), f"{fit.chi2:.2f}", str(fit.dof)])
            fits[name] = {"value": fit.value, "error": fit.error, "chi2": fit.chi2, "dof": fit.dof,
                                   "coefficients": fit.coefficients.tolist()}
        ax.set_xlabel(series.xlabel)
        ax.set_ylabel("energy (Ha)")
        ax.set_title(series.title)
        ax.set_xlim(left=-0.02 * max(series.x))
        ax.legend(fontsize=8)
        section.images.append(_save(fig, out / f"timestep_{_slug(stem)}.png"))
        section.tables.append((["element", "τ", "energy (Ha)", "error (Ha)"], _points(series)))
        if rows:
            section.tables.append((["fit", "E(τ→0) (Ha)", "error (Ha)", "χ²", "dof"], rows))
        else:
            section.notes.append(f"{series.title}: fewer than 3 time steps, no extrapolation")
        section.numbers.append(entry)
    return section


def scan_section(found: list[Series], out: Path) -> Section:
    """Energy of each step against the scanned parameter, one figure for all steps."""
    section = Section("scan", "Energy along the scan")
    if not found:
        return section
    plt = _pyplot()
    methods = sorted({s.title.split(" ")[-1].rstrip(")") for s in found})
    fig, axes = plt.subplots(len(methods), 1, figsize=(6.4, 3.2 * len(methods)), sharex=True, squeeze=False)
    for series in found:
        ax = axes[methods.index(series.title.split(" ")[-1].rstrip(")")), 0]
        known = [0.0 if math.isnan(e) else e for e in series.error]  # no bar where a step has no error (SCF)
        ax.errorbar(series.x, series.energy, yerr=known if any(known) else None, fmt="o-", capsize=3,
                    label=series.title)
        ax.set_ylabel("energy (Ha)")
        ax.legend(fontsize=8)
        section.tables.append((["job", found[0].xlabel, f"{series.title}: energy (Ha)", "error (Ha)"],
                               _points(series)))
        section.numbers.append({"title": series.title, "x": series.x, "jobs": series.labels,
                                "energy": series.energy, "xlabel": series.xlabel,
                                "error": [e if math.isfinite(e) else None for e in series.error]})
    axes[-1, 0].set_xlabel(found[0].xlabel)
    axes[0, 0].set_title("energy vs " + found[0].xlabel)
    section.images.append(_save(fig, out / "scan.png"))
    return section


def twist_section(found: list[Series], out: Path) -> Section:
    """Energy per twist and the weighted twist average."""
    section = Section("twists", "Twist averaging")
    plt = _pyplot()
    for name, series in zip(_stems(found, " energy per twist"), found, strict=True):
        avg = series.fits["average"]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.errorbar(series.x, series.energy, yerr=series.error, fmt="o", color="k", capsize=3,
                    label="twist energy")
        ax.axhline(avg["energy"], color="tab:blue",
                   label=f"weighted average {avg['energy']:.5f} ± {avg['error']:.5f}")
        ax.axhspan(avg["energy"] - avg["error"], avg["energy"] + avg["error"], color="tab:blue", alpha=0.2)
        ax.set_xticks(series.x)
        ax.set_xticklabels([f"{int(x)}\n{_kpoint(k)}\nw = {w:.3g}" for x, k, w in
                            zip(series.x, avg["kpoints"], avg["weights"], strict=True)], fontsize=8)
        ax.margins(x=0.15)
        ax.set_xlabel("twist index / k-vector (1/bohr) / weight")
        ax.set_ylabel("energy per supercell (Ha)")
        ax.set_title(series.title)
        ax.legend(fontsize=8)
        section.images.append(_save(fig, out / f"twists_{_slug(name)}.png"))
        rows = [[label, f"{int(x)}", _kpoint(k), f"{w:.4f}", _fmt(e), _fmt(s)] for label, x, k, w, e, s in
                zip(series.labels, series.x, avg["kpoints"], avg["weights"], series.energy, series.error,
                    strict=True)]
        rows.append(["twist average", "", "", f"{sum(avg['weights']):.4f}", _fmt(avg["energy"]),
                     _fmt(avg["error"])])
        header = ["element", "twist", "k (1/bohr)", "weight", "energy (Ha)", "error (Ha)"]
        section.tables.append((header, rows))
        if not avg["complete"]:
            section.notes.append(f"{series.title}: not every twist of the mesh is done; "
                                 "the average is partial")
        # "energy"/"error" are the twist average; each twist's own are "energies"/"errors"
        section.numbers.append({"title": series.title, "twist": series.x, "steps": series.labels,
                                "energies": series.energy, "errors": series.error, **avg})
    return section


def _stems(found: list[Series], tail: str) -> list[str]:
    """A file-name stem per series titled "job: step<tail>": the job, or job_step where a job has several."""
    jobs = [series.title.split(": ", 1)[0] for series in found]
    steps = [series.title.split(": ", 1)[-1].removesuffix(tail) for series in found]
    return [job if jobs.count(job) == 1 else f"{job}_{step}" for job, step in zip(jobs, steps, strict=True)]


def _kpoint(k: Any) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in k) + ")" if k else ""


def optimization_section(traces: list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]],
                         out: Path) -> Section:
    """VMC energy per optimization iteration, all optimizations in one figure; where a run published
    another energy than its last iteration's (a VMC of the final parameters), that one as a square one
    step after the last iteration, and as the table's last row."""
    section = Section("optimization", "Wave-function optimization")
    if not traces:
        return section
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, energy, error, published in traces:
        iterations = np.arange(energy.size)
        line = ax.errorbar(iterations, energy, yerr=np.nan_to_num(error), fmt="o-", capsize=2, label=label)
        # a trace read from a file being written may hold one error fewer than energies: rows of both
        rows = [[str(i), _fmt(e), _fmt(s)] for i, e, s in zip(iterations, energy, error, strict=False)]
        numbers: dict[str, Any] = {"label": label, "energy": energy.tolist(), "error": error.tolist()}
        if "energy" in published:
            value, sigma = float(published["energy"]), float(published.get("error") or np.nan)
            ax.errorbar([energy.size], [value], yerr=[np.nan_to_num(sigma)], fmt="s", capsize=3,
                        color=line[0].get_color(), label=f"{label}: {published['energy_of']} (published)")
            rows.append([f"published: {published['energy_of']}", _fmt(value), _fmt(sigma)])
            numbers["published"] = published
        section.tables.append(([f"{label}: iteration", "energy (Ha)", "error (Ha)"], rows))
        section.numbers.append(numbers)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("optimization iteration")
    ax.set_ylabel("VMC energy (Ha)")
    ax.set_title("Jastrow optimization convergence")
    ax.legend(fontsize=8)
    section.images.append(_save(fig, out / "optimization.png"))
    return section


def blocks_section(traces: list[dict[str, Any]], out: Path) -> Section:
    """Block energies of each VMC/DMC run with the warm-up cut; MAX_TRACES panels per figure."""
    section = Section("blocks", "Block traces (equilibration)")
    plt = _pyplot()
    for start in range(0, len(traces), MAX_TRACES):
        chunk = traces[start:start + MAX_TRACES]
        fig, axes = plt.subplots(len(chunk), 1, figsize=(7.0, 2.0 * len(chunk) + 0.6), squeeze=False)
        for ax, trace in zip(axes[:, 0], chunk, strict=True):
            energy, warmup = trace["energy"], trace["warmup"]
            ax.plot(np.arange(energy.size), energy, lw=0.8, color="k")
            ax.axvspan(-0.5, warmup - 0.5, color="tab:orange", alpha=0.25, label=f"warm-up ({warmup} blocks)")
            if trace["mean"] is not None and trace["error"] is not None:
                ax.axhline(trace["mean"], color="tab:blue",
                           label=f"{trace['mean']:.5f} ± {trace['error']:.5f}")
                ax.axhspan(trace["mean"] - trace["error"], trace["mean"] + trace["error"], color="tab:blue",
                           alpha=0.2)
            ax.set_ylabel("E (Ha)")
            ax.set_title(trace["label"], fontsize=9)
            ax.legend(fontsize=7, loc="upper right")
            section.numbers.append({"label": trace["label"], "blocks": int(energy.size), "warmup": warmup,
                                    "energy": trace["mean"], "error": trace["error"]})
        axes[-1, 0].set_xlabel("block")
        section.images.append(_save(fig, out / f"blocks_{start // MAX_TRACES + 1}.png"))
    section.tables.append((["run", "blocks", "warm-up", "energy (Ha)", "error (Ha)"],
                           [[n["label"], str(n["blocks"]), str(n["warmup"]), _fmt(n["energy"]),
                             _fmt(n["error"])] for n in section.numbers]))
    if not traces:
        section.tables.clear()
    return section
