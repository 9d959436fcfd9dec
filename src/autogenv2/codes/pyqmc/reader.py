"""PyQMC Readers: read the HDF5 blocks, reblock with our own statistics, judge the run.

A kill (walltime, SIGKILL) loses only the block in progress, so a killed run is *incomplete*,
never failed: its blocks count and the next attempt continues the same file. Reading is done
only after the process ended (a reader holding the file open can crash the writer).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pydantic import Field

from ... import errorbar, stats
from ...sampling import WalkerGroups
from ...sampling_reader import SamplingReader, missing_output, read_result
from ...states import Verdict
from ..base import Reader, ReadResult
from ..failures import last_error_line

RETRYABLE = ("BlockingIOError", "unable to lock file", "truncated file", "Killed")
"""Failure texts after which running the same input again can succeed."""


def _params(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "params.json").read_text())  # type: ignore[no-any-return]


def _failure(directory: Path, exit_code: int | None, what: str) -> ReadResult:
    line = last_error_line(directory / "stdout.txt")
    retry = any(text in line for text in RETRYABLE)
    reason = f"{what}: {line or f'exit code {exit_code}'}"
    return ReadResult(verdict=Verdict.failed, reason=reason, retry=retry)


class MCReader(SamplingReader):
    """VMC/DMC: complete when the requested blocks ran and :func:`sampling.judge` finds them enough."""

    warmup: int = Field(5, ge=0, description="blocks dropped once from the start of the merged series")

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        params = _params(directory)
        path = directory / params["output"]
        if exit_code is not None and exit_code > 0:
            return _failure(directory, exit_code, "PyQMC raised an error")
        if not path.exists():
            return missing_output(params["output"], exit_code)
        try:
            energy, weights = read_blocks(path)
            walkers = None
            if params.get("walker_groups"):  # written by us; None for a file begun without them
                walkers = read_walker_groups(path, int(params["options"]["nconfig"]), energy.size)
            if walkers is not None:  # a kill between the two writes of a block: drop the partial one
                energy = energy[:walkers.means.shape[0]]
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed,
                              reason=f"{params['output']} is unreadable ({exc}); move it "
                              "aside and `autogenv2 run --retry-failed` to start the run afresh")
        requested = int(params.get("total_blocks", params["options"]["nblocks"]))
        read = self.judge(energy, weights, requested, params["output"], walkers)
        read.results.update(read_twist(directory))
        if weights is not None and walkers is None:  # DMC of one population
            mark_dmc_error(read.results)
        elif walkers is not None and walkers.populations:
            mark_small_populations(read.results, float(walkers.sizes.min()))
        return read

    def judge(self, energy: np.ndarray, weights: np.ndarray | None, requested: int, output: str,
              walkers: WalkerGroups | None = None) -> ReadResult:
        """The verdict for a block series (shared with the toy Reader, tests and benchmarks)."""
        return read_result(self, energy, weights, self.warmup, requested, {"hdf": output}, walkers)

    @classmethod
    def block_series(cls, directory: Path, outputs: Mapping[str, Path],
                     method: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        path = outputs.get("hdf")
        return read_blocks(path) if path is not None and path.exists() else None


DMC_SLOW_MODE = ("PyQMC DMC blocks (0.1 au) are correlated over longer than one run's blocks show: 101 "
                 "fresh H2 runs of 60 and 180 blocks covered 87 % and 90 % at 2σ, std/σ 1.11 "
                 "(docs/benchmarks.md 'Calibration'); a trusted error needs independent populations "
                 "(walker_groups, 16 by default; this run has one)")
"""Why a PyQMC DMC error bar of one population is published with ``reliable = false``
(see :func:`mark_dmc_error`)."""


def mark_dmc_error(results: dict[str, Any]) -> None:
    """Publish the error bar of a PyQMC DMC of one population (``walker_groups = 0``, or a file begun
    without populations) as not reliable, with the reason; the number is kept, the run goes on.

    Measured (benchmarks/calibration_real.py, H2, τ = 0.02, 200 walkers, 35 tuning + 101 fresh seeds):
    the block energies' autocorrelation has a long tail (τ from the runs' scatter 3.3 blocks over 60,
    4.5 over 180; within runs ρ₁ = 0.34 then 0.17, 0.13, 0.10, 0.09, 0.08, 0.07, 0.05 ...) that no
    estimator on one run's blocks recovered at both lengths: reblocking with or without the evidence
    test, twice Lee's block, 8 batches, Sokal's window (c = 5, 10), Geyer's sequence, the weight series.
    It is not PyQMC's population control: e_trial scales every walker alike, so ``feedback`` leaves the
    block energies as they were (2e-6 Ha over 25 blocks, same seed), and weighting the blocks changes
    no coverage.
    """
    if results.get("error") is not None:
        unreliable(results, DMC_SLOW_MODE)


POPULATION_SHIFT_LIMIT = 0.25
"""The largest ``population_shift``, in units of the published error, that leaves it ``reliable``."""


def mark_small_populations(results: dict[str, Any], walkers: float) -> None:
    """Publish a DMC's error as not reliable when its populations (of at least ``walkers`` walkers
    each) are small for the trial function: their own energies average more than
    ``POPULATION_SHIFT_LIMIT`` σ from the all-walker estimate. Combing a population on its own is a
    population control; the shift is the part of its bias one block's weights show, and a part of
    that order may remain in the published mean. The run goes on (more blocks would not help).

    Measured (H2, τ = 0.02, 16 populations of 12–13 walkers): with an optimized Jastrow the shift is
    +0.10 mHa, at most 0.14σ over 200 runs; with the unoptimized one +0.68 mHa, median 0.15σ of a
    180-block run (1 of 39 over the limit), growing relative to σ as √blocks (docs/benchmarks.md
    "PyQMC DMC: populations", "Population control").
    """
    shift, error = results.get("population_shift"), results.get("error")
    if shift is None or error is None or abs(shift) <= POPULATION_SHIFT_LIMIT * error:
        return
    unreliable(results, f"the populations' own energies average {shift * 1e3:+.2f} mHa "
               f"({abs(shift) / error:.2f}σ) from the all-walker estimate: populations of {walkers:.0f} "
               "walkers are small for this trial function, and a population-control bias of that order "
               "may remain; give each more walkers (nconfig) or ask for fewer walker_groups")


def unreliable(results: dict[str, Any], why: str) -> None:
    """Mark a published error bar as not reliable, adding ``why`` to the reasons already given."""
    reason = results.get("unreliable_reason") or ""
    results["reliable"] = False
    results["unreliable_reason"] = f"{reason}; {why}" if reason else why


def read_twist(directory: Path) -> dict[str, Any]:
    """Periodic runs: the twist index, its k-vector (1/bohr) and weight, from ``twist.json``."""
    path = directory / "twist.json"
    if not path.exists():
        return {}
    info = json.loads(path.read_text())
    return {"twist": int(info["twist"]), "kpoint": [float(k) for k in info["kpoint"]],
            "twist_weight": float(info["weight"]), "ntwists": int(info["ntwists"])}


def read_blocks(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Block energies (real part) and DMC weights, trimmed to a common length."""
    with h5py.File(path, "r") as handle:
        energy = np.asarray(handle["energytotal"][()]).real if "energytotal" in handle else np.zeros(0)
        weights = np.asarray(handle["weight"][()], dtype=float) if "weight" in handle else None
    if weights is not None:
        n = min(energy.size, weights.size)
        energy, weights = energy[:n], weights[:n]
    return energy, weights


def group_sizes(nconfig: int, groups: int) -> np.ndarray:
    """Walkers in each group: our run.py takes group g as the g-th of ``numpy.array_split(walkers, G)``."""
    return np.array([part.size for part in np.array_split(np.arange(nconfig), groups)], dtype=float)


def read_walker_groups(path: Path, nconfig: int, blocks: int) -> WalkerGroups | None:
    """VMC's ``energygroups`` (written by our run.py), or None when the file has none. A DMC's are each
    population's Σ w·E per block, with its Σ w in ``energygroupweight``: their ratio is its energy."""
    with h5py.File(path, "r") as handle:
        if "energygroups" not in handle:
            return None
        means = np.asarray(handle["energygroups"][()], dtype=float)
        weight = (np.asarray(handle["energygroupweight"][()], dtype=float)
                  if "energygroupweight" in handle else None)
    if weight is None:
        return walker_groups(means, nconfig, blocks)
    n = min(len(means), len(weight))  # a kill between PyQMC's appends of one block: drop the partial one
    if weight.shape[1:] != means.shape[1:] or np.any(weight[:n] <= 0):
        raise ValueError(f"energygroupweight has shape {weight.shape}, expected {means.shape}, all > 0")
    return walker_groups(means[:n] / weight[:n], nconfig, blocks, populations=True)


def walker_groups(means: np.ndarray, nconfig: int, blocks: int, populations: bool = False) -> WalkerGroups:
    """A (blocks, G) ``energygroups`` array with its group sizes; ValueError for another shape.

    Group g holds the g-th of ``numpy.array_split(walkers, G)``, so its size follows from nconfig.
    """
    if means.ndim != 2 or not 1 <= means.shape[1] <= nconfig:
        raise ValueError(f"energygroups has shape {means.shape}, expected (blocks, ≤ {nconfig})")
    return WalkerGroups(means[:blocks], group_sizes(nconfig, means.shape[1]), populations)


class OptimizeReader(Reader):
    """Optimization: complete when the energy of the last iterations is flat within error bars."""

    window: int = Field(3, ge=2, description="last iterations compared")
    tolerance_sigmas: float = Field(2.0, gt=0)
    max_total_iterations: int = Field(40, ge=1, description="give up continuing after this many")

    @classmethod
    def iteration_trace(cls, result: Mapping[str, Any],
                        outputs: Mapping[str, Path]) -> tuple[np.ndarray, np.ndarray]:
        """Energy and error per iteration (for the report): from the wave-function file, else the stored
        ``energy_trace`` without errors."""
        path = outputs.get("wavefunction")
        if path is not None and path.suffix == ".hdf5" and path.exists():
            try:
                energy, error = read_trace(path)
                if energy.size:
                    return energy, error
            except (OSError, KeyError, ValueError):  # unreadable: keep the trace the Reader stored
                pass
        energy = np.asarray(result.get("energy_trace", []), dtype=float)
        return energy, np.full(energy.size, np.nan)

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        params = _params(directory)
        path = directory / params["output"]
        if exit_code is not None and exit_code > 0:
            return _failure(directory, exit_code, "PyQMC optimization raised an error")
        if not path.exists():
            return ReadResult(verdict=Verdict.incomplete if (exit_code or 0) < 0 else Verdict.failed,
                              reason="no opt.hdf5 written", results={"iterations": 0}, retry=True)
        try:
            with h5py.File(path, "r") as handle:
                energy = np.asarray(handle["energy"][()]).real if "energy" in handle else np.zeros(0)
                error = (np.asarray(handle["energy_error"][()]).real if "energy_error" in handle
                         else np.zeros(0))
                groups = (np.asarray(handle["energygroups"][()], dtype=float) if "energygroups" in handle
                          else None)  # None: a file begun without them
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"{params['output']} is unreadable ({exc})")
        n = min(energy.size, error.size)
        energy, error = energy[:n], error[:n]
        honest = iteration_errors(groups, params, energy)
        honest = error * iteration_error_factor(params["options"]) if honest is None else honest
        results: dict[str, Any] = {"iterations": int(n), "energy_trace": [float(e) for e in energy],
                                   "error_trace": [stats.finite_or_none(s) for s in honest]}
        if n:  # one VMC block per iteration gives no error bar (None), never NaN
            results.update(energy=float(energy[-1]), error=stats.finite_or_none(honest[-1]))
        outputs = {"wavefunction": params["output"]}
        requested = int(params["options"]["max_iterations"])
        if n < requested:
            return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                              reason=f"stopped after {n} of {requested} iterations")
        trace = errorbar.trace_convergence(energy, error, self.window, self.tolerance_sigmas)
        change = trace.change
        results.update(last_change=change, error_stated=float(error[-1]) if n else None,
                       trace_scatter=stats.finite_or_none(trace.scatter), reliable=trace.converged,
                       unreliable_reason=trace.reason)
        # stated × max(1, scatter): PyQMC's per-iteration error ignores the scatter
        if n and math.isfinite(trace.error):
            results["error"] = max(float(honest[-1]), trace.error)
        final = final_vmc(directory, params, n, trace.error)
        results.update(final)
        if trace.converged and not final and params.get("final_vmc") and groups is not None:
            # run.py makes it wherever the file records walker groups (one begun without them, never)
            return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                              reason="converged, but the VMC of the parameters handed on did not finish")
        if trace.converged:
            return ReadResult(verdict=Verdict.complete, results=results, outputs=outputs)
        if n >= self.max_total_iterations:
            return ReadResult(verdict=Verdict.failed, results=results, outputs=outputs,
                              reason=f"not converged after {n} iterations ({trace.reason})")
        want = min(self.max_total_iterations, n + self.window)
        return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                          more={"max_iterations": want},
                          reason=f"{trace.reason}; continuing to {want} iterations")


def final_vmc(directory: Path, params: Mapping[str, Any], iterations: int,
              trace_error: float) -> dict[str, Any]:
    """The energy of the parameters handed on, from the VMC run.py makes of them after the last
    iteration (``final_vmc`` in params.json), or {} when there is none for ``iterations``.

    The last iteration's energy is that of the parameters *before* its line search, and the stopping
    rule selects it upward (a trace looks flat when its last energy came out high: +1.1 to +1.6 mHa on
    real H2 optimizations, calibration_opt.py); this VMC is sampled after the rule's data, so neither
    applies to it. Its error is its walker groups' scatter, as each iteration's, or the trace's when
    that is larger.
    """
    spec = params.get("final_vmc")
    path = directory / spec["output"] if spec else None
    if path is None or not path.exists():
        return {}
    try:
        with h5py.File(path, "r") as handle:
            if int(handle.attrs.get("iterations", -1)) != iterations or "energygroups" not in handle:
                return {}  # another attempt's, or killed before it was complete
            means = np.asarray(handle["energygroups"][()], dtype=float)
        found = walker_groups(means, int(params["options"]["nconfig"]), means.shape[0])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return {}
    if found.sizes.size < 2:
        return {}
    runs = found.means.mean(axis=0)
    error = stats.between_groups_error(runs, found.sizes)
    if math.isfinite(trace_error):
        error = max(error, trace_error)
    return {"energy": float(runs @ found.sizes / found.sizes.sum()), "error": stats.finite_or_none(error),
            "energy_of": "a VMC of the final parameters", "final_vmc_blocks": int(means.shape[0])}


def read_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Energy and error per iteration of an ``opt.hdf5`` (empty arrays when it has none)."""
    with h5py.File(path, "r") as handle:
        if "energy" not in handle or "energy_error" not in handle:
            return np.zeros(0), np.zeros(0)
        energy = np.asarray(handle["energy"][()]).real
        return energy, np.asarray(handle["energy_error"][()]).real[: energy.size]


def iteration_errors(means: np.ndarray | None, params: Mapping[str, Any],
                     energy: np.ndarray) -> np.ndarray | None:
    """Per-iteration errors from the scatter of the walker groups' run means (opt.hdf5's ``energygroups``,
    written by our run.py: (iterations, blocks, G)), or None when the file has none or they do not match
    ``energy``.

    The walkers of one iteration's VMC are independent chains, so each group's run mean carries its own
    autocorrelation, which PyQMC's ``np.std(block means)/√nblocks`` over 10 blocks cannot show (lag-1
    correlation 0.14 for the starting H2 wave function): :func:`stats.between_groups_error`, G − 1 dof.
    """
    if means is None or not params.get("walker_groups"):
        return None
    nconfig = int(params["options"]["nconfig"])
    if means.ndim != 3 or means.shape[0] != energy.size or not 2 <= means.shape[2] <= nconfig:
        return None  # e.g. a kill between PyQMC's appends of one iteration
    sizes = group_sizes(nconfig, means.shape[2])
    runs = means.mean(axis=1)  # (iterations, G): each group's mean over the iteration's blocks
    if not np.allclose(runs @ sizes / sizes.sum(), energy, rtol=0.0, atol=1e-8):
        return None  # not the iterations PyQMC reports
    return np.array([stats.between_groups_error(run, sizes) for run in runs])


def iteration_error_factor(options: dict[str, Any]) -> float:
    """σ multiplier that makes PyQMC's per-iteration error an honest one (calibration_opt.py).

    PyQMC states ``np.std(block means) / √nblocks`` (ddof 0) over the iteration's ``nblocks`` VMC
    blocks (``vmcoptions``, default 10): with so few blocks (E − E_true)/σ follows Student's t with
    nblocks − 1 dof, so σ is taken with ddof 1 and given the small-sample factor of block series
    (:func:`errorbar.small_sample_factor`): ×1.14 for 10 blocks. The convergence test keeps the
    stated errors (stricter); the published error is the larger of this one and the trace's. Used only
    when the file has no walker groups (:func:`iteration_errors`): older runs, ``walker_groups = 0``.
    """
    blocks = int(options.get("vmcoptions", {}).get("nblocks", 10))
    if blocks < 2:
        return float("nan")
    return math.sqrt(blocks / (blocks - 1)) * errorbar.small_sample_factor(blocks - 1)


def converged_energy(energy: np.ndarray, error: np.ndarray, window: int, sigmas: float) -> tuple[bool, float]:
    """Flat when max-min of the last ``window`` energies ≤ ``sigmas`` × their combined error and the
    recent trace scatters no more than its errors allow (:func:`errorbar.trace_convergence`)."""
    trace = errorbar.trace_convergence(energy, error, window, sigmas)
    return trace.converged, trace.change
