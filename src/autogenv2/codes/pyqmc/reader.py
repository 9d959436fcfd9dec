"""PyQMC Readers: read the HDF5 blocks, reblock with our own statistics, judge the run.

A kill (walltime, SIGKILL) loses only the block in progress, so a killed run is *incomplete*,
never failed: its blocks count and the next attempt continues the same file. Reading is done
only after the process ended (a reader holding the file open can crash the writer).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pydantic import Field

from ... import errorbar, health, stats
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
    return ReadResult(verdict=Verdict.failed, reason=f"{what}: {line or f'exit code {exit_code}'}", retry=retry)


@dataclass(frozen=True)
class WalkerGroups:
    """Block means (blocks × G) of G groups of independent walkers, and each group's walker count."""

    means: np.ndarray
    sizes: np.ndarray

    def series(self) -> np.ndarray:
        """The block series over all walkers (each group weighted by its walkers): PyQMC's energytotal."""
        return self.means @ self.sizes / self.sizes.sum()


class MCReader(Reader):
    """VMC/DMC: complete when the requested blocks ran and the error bar meets ``target_error``."""

    target_error: float | None = Field(None, gt=0, description="Ha; sample until the error bar is below")
    warmup: int = Field(5, ge=0, description="blocks dropped once from the start of the merged series")
    target_confidence: float = Field(0.95, ge=0.5, lt=1, description="how sure the Reader must be that the true "
                                     "error is within target_error (0.5: trust the estimate as it is)")
    min_blocks: int = Field(10, ge=2, description="blocks after warm-up needed for a trustworthy error")
    max_blocks: int = Field(20000, ge=1, description="never ask for more blocks than this in total")

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
            if params.get("walker_groups"):  # VMC written by us; None for a file begun without them
                walkers = read_walker_groups(path, int(params["options"]["nconfig"]), energy.size)
            if walkers is not None:  # a kill between the two writes of a block: drop the partial one
                energy = energy[:walkers.means.shape[0]]
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"{params['output']} is unreadable ({exc}); move it "
                              "aside and `autogenv2 run --retry-failed` to start the run afresh")
        requested = int(params.get("total_blocks", params["options"]["nblocks"]))
        read = self.judge(energy, weights, requested, params["output"], walkers)
        read.results.update(read_twist(directory))
        return read

    def judge(self, energy: np.ndarray, weights: np.ndarray | None, requested: int, output: str,
              walkers: WalkerGroups | None = None) -> ReadResult:
        """The verdict for a block series (shared with tests and benchmarks).

        With ``walkers`` (VMC's block means of independent walker groups) the error bar published
        and planned with is :func:`stats.precision_walkers`, about √G times surer of itself than any
        error of the one averaged series; the reblocked error stays beside it as ``error_reblocked``.
        """
        blocks = int(energy.size)
        results: dict[str, Any] = {"blocks": blocks, "warmup": self.warmup}
        est = prec = None
        if blocks - self.warmup >= 2:
            pub = errorbar.publish(energy, weights, warmup=self.warmup)  # the block series' honest error
            est, quality = pub.estimate, pub.results()
            if walkers is None:
                prec = stats.precision(energy, weights, warmup=self.warmup)
            else:
                prec = stats.precision_walkers(walkers.means, walkers.sizes, warmup=self.warmup)
                groups = walkers.means.shape[1]
                quality = {"error_reblocked": pub.reblocked, "error_method": f"{groups} walker groups"}
                if math.isfinite(prec.error):
                    est = replace(est, error=prec.error, reliable=prec.reliable)
                    quality |= errorbar.from_precision(prec)
            results.update(energy=est.mean, error=est.error, variance=est.variance,
                           reblock_size=est.block_size, reliable=est.reliable,
                           autocorrelation_time=stats.finite_or_none(prec.tau),
                           error_bound=stats.finite_or_none(prec.upper(stats.confidence_z(self.target_confidence))),
                           health=health.check_series(energy, weights, self.warmup))
            results.update(quality)
        outputs = {"hdf": output}
        if blocks < requested:
            return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                              reason=f"stopped after {blocks} of {requested} blocks")
        if blocks - self.warmup < self.min_blocks or est is None or prec is None:
            want = min(self.max_blocks, self.warmup + self.min_blocks)
            return self._more(results, outputs, want, f"only {blocks - self.warmup} blocks after warm-up")
        if self.target_error is not None:
            # Plan with the low-noise windowed error and stop on its 95 % upper bound (stats.py,
            # benchmarks/sampling_efficiency.py); an unreliable error doubles the run.
            z = stats.confidence_z(self.target_confidence)
            total, why = stats.samples_to_target(est, prec, self.target_error, z)
            if total:
                want = min(self.max_blocks, self.warmup + total)
                if want <= blocks:
                    return ReadResult(verdict=Verdict.failed, results=results, outputs=outputs,
                                      reason=f"{why} at max_blocks {self.max_blocks}")
                return self._more(results, outputs, want, why)
        return ReadResult(verdict=Verdict.complete, results=results, outputs=outputs)

    @staticmethod
    def _more(results: dict[str, Any], outputs: dict[str, str], want: int, why: str) -> ReadResult:
        return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                          more={"nblocks": want}, reason=f"{why}: continuing to {want} blocks")


def read_twist(directory: Path) -> dict[str, Any]:
    """Periodic runs: the twist index, its k-vector (1/bohr) and weight, from ``twist.json``."""
    path = directory / "twist.json"
    if not path.exists():
        return {}
    info = json.loads(path.read_text())
    return {"twist": int(info["twist"]), "kpoint": [float(k) for k in info["kpoint"]],
            "twist_weight": float(info["weight"]), "ntwists": int(info["ntwists"])}


def missing_output(name: str, exit_code: int | None) -> ReadResult:
    """No block file: a killed run had not finished its first block (progress 0), else a failure."""
    if exit_code is not None and exit_code < 0:
        return ReadResult(verdict=Verdict.incomplete, reason="killed before the first block", results={"blocks": 0})
    return ReadResult(verdict=Verdict.failed, reason=f"{name} was not written", retry=True)


def read_blocks(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Block energies (real part) and DMC weights, trimmed to a common length."""
    with h5py.File(path, "r") as handle:
        energy = np.asarray(handle["energytotal"][()]).real if "energytotal" in handle else np.zeros(0)
        weights = np.asarray(handle["weight"][()], dtype=float) if "weight" in handle else None
    if weights is not None:
        n = min(energy.size, weights.size)
        energy, weights = energy[:n], weights[:n]
    return energy, weights


def read_walker_groups(path: Path, nconfig: int, blocks: int) -> WalkerGroups | None:
    """VMC's ``energygroups`` (written by our run.py), or None when the file has none.

    Group g holds the g-th of ``numpy.array_split(walkers, G)``, so its size follows from nconfig.
    """
    with h5py.File(path, "r") as handle:
        if "energygroups" not in handle:
            return None
        means = np.asarray(handle["energygroups"][()], dtype=float)
    if means.ndim != 2 or not 1 <= means.shape[1] <= nconfig:
        raise ValueError(f"energygroups has shape {means.shape}, expected (blocks, ≤ {nconfig})")
    sizes = np.array([part.size for part in np.array_split(np.arange(nconfig), means.shape[1])], dtype=float)
    return WalkerGroups(means[:blocks], sizes)


class OptimizeReader(Reader):
    """Optimization: complete when the energy of the last iterations is flat within error bars."""

    window: int = Field(3, ge=2, description="last iterations compared")
    tolerance_sigmas: float = Field(2.0, gt=0)
    max_total_iterations: int = Field(40, ge=1, description="give up continuing after this many")

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
                error = np.asarray(handle["energy_error"][()]).real if "energy_error" in handle else np.zeros(0)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"{params['output']} is unreadable ({exc})")
        n = min(energy.size, error.size)
        energy, error = energy[:n], error[:n]
        honest = error * iteration_error_factor(params["options"])
        results: dict[str, Any] = {"iterations": int(n), "energy_trace": [float(e) for e in energy],
                                   "error_trace": [float(s) for s in honest]}
        if n:
            results.update(energy=float(energy[-1]), error=float(honest[-1]))
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
        if n and math.isfinite(trace.error):  # stated × max(1, scatter): PyQMC's per-iteration error ignores it
            results["error"] = max(float(honest[-1]), trace.error)
        if trace.converged:
            return ReadResult(verdict=Verdict.complete, results=results, outputs=outputs)
        if n >= self.max_total_iterations:
            return ReadResult(verdict=Verdict.failed, results=results, outputs=outputs,
                              reason=f"not converged after {n} iterations ({trace.reason})")
        want = min(self.max_total_iterations, n + self.window)
        return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs, more={"max_iterations": want},
                          reason=f"{trace.reason}; continuing to {want} iterations")


def iteration_error_factor(options: dict[str, Any]) -> float:
    """σ multiplier that makes PyQMC's per-iteration error an honest one (calibration_opt.py).

    PyQMC states ``np.std(block means) / √nblocks`` (ddof 0) over the iteration's ``nblocks`` VMC
    blocks (``vmcoptions``, default 10): with so few blocks (E − E_true)/σ follows Student's t with
    nblocks − 1 dof, so σ is taken with ddof 1 and given the small-sample factor of block series
    (:func:`errorbar.small_sample_factor`): ×1.14 for 10 blocks. The convergence test keeps the
    stated errors (stricter); the published error is the larger of this one and the trace's.
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
