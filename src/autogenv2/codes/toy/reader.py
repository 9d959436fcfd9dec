"""Toy Reader: the same verdicts as the PyQMC MC Reader, from ``blocks.json``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ... import health, stats
from ...states import Verdict
from ..base import Reader, ReadResult
from ..failures import last_error_line
from .writer import OUTPUT


def read_series(path: Path) -> np.ndarray:
    """The block energies; ValueError if the file is not a toy series."""
    return read_blocks(path)[0]


def read_blocks(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Block energies and walker weights (None when absent); ValueError if not a toy series."""
    data = json.loads(path.read_text(encoding="utf-8"))
    energy = data.get("energy") if isinstance(data, dict) else None
    if not isinstance(energy, list) or not all(isinstance(e, (int, float)) for e in energy):
        raise ValueError("no list of numbers under 'energy'")
    weight = data.get("weight")
    weights = np.asarray(weight, dtype=float) if isinstance(weight, list) and len(weight) == len(energy) else None
    return np.asarray(energy, dtype=float), weights


class ToyReader(Reader):
    """Complete when the requested blocks ran and the error bar meets ``target_error``."""

    target_error: float | None = Field(None, gt=0)
    warmup: int = Field(0, ge=0, description="blocks dropped from the start of the series")
    min_blocks: int = Field(10, ge=2, description="blocks after warm-up needed for a trustworthy error")
    max_blocks: int = Field(100000, ge=1, description="never ask for more blocks than this in total")

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        if exit_code is not None and exit_code > 0:
            line = last_error_line(directory / "stdout.txt")
            return ReadResult(verdict=Verdict.failed, reason=f"toy run raised an error: {line or exit_code}")
        path = directory / OUTPUT
        if not path.exists():
            if exit_code is not None and exit_code < 0:
                return ReadResult(verdict=Verdict.incomplete, reason="killed before the first block",
                                  results={"blocks": 0})
            return ReadResult(verdict=Verdict.failed, reason=f"{OUTPUT} was not written", retry=True)
        try:
            energy, weights = read_blocks(path)
            requested = int(json.loads((directory / "params.json").read_text())["nblocks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"{path.name} or params.json unreadable: {exc}")
        return self.judge(energy, requested, weights)

    def judge(self, energy: np.ndarray, requested: int, weights: np.ndarray | None = None) -> ReadResult:
        """The verdict for a block series."""
        blocks = int(energy.size)
        results: dict[str, Any] = {"blocks": blocks, "warmup": self.warmup}
        if blocks - self.warmup >= 2:
            est = stats.estimate(energy, warmup=self.warmup)
            results.update(energy=est.mean, error=est.error, variance=est.variance,
                           reblock_size=est.block_size, reliable=est.reliable,
                           health=health.check_series(energy, weights, self.warmup))
        outputs = {"blocks": OUTPUT}
        if blocks < requested:
            return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs,
                              reason=f"stopped after {blocks} of {requested} blocks")
        want = blocks
        why = ""
        if blocks - self.warmup < self.min_blocks:
            want, why = self.warmup + self.min_blocks, f"only {blocks - self.warmup} blocks after warm-up"
        elif self.target_error is not None and results["error"] > self.target_error:
            extra = stats.blocks_needed(results["error"], self.target_error, blocks - self.warmup)
            want, why = blocks + max(extra, 1), f"error {results['error']:.2e} > target {self.target_error:.2e}"
        if want == blocks:
            return ReadResult(verdict=Verdict.complete, results=results, outputs=outputs)
        if min(want, self.max_blocks) <= blocks:
            return ReadResult(verdict=Verdict.failed, results=results, outputs=outputs, reason=f"{why} at max_blocks")
        want = min(want, self.max_blocks)
        return ReadResult(verdict=Verdict.incomplete, results=results, outputs=outputs, more={"nblocks": want},
                          reason=f"{why}: continuing to {want} blocks")
