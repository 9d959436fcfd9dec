"""Toy Reader: the sampling verdicts every series-publishing Reader gives (:mod:`autogenv2.sampling`),
read from ``blocks.json``."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import Field

from ...sampling_reader import SamplingReader, missing_output, read_result
from ...states import Verdict
from ..base import ReadResult
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
    matching = isinstance(weight, list) and len(weight) == len(energy)
    weights = np.asarray(weight, dtype=float) if matching else None
    return np.asarray(energy, dtype=float), weights


class ToyReader(SamplingReader):
    """The shared sampling verdicts (target error, min/max blocks), read from ``blocks.json``."""

    warmup: int = Field(0, ge=0, description="blocks dropped from the start of the series")

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        if exit_code is not None and exit_code > 0:
            line = last_error_line(directory / "stdout.txt")
            return ReadResult(verdict=Verdict.failed, reason=f"toy run raised an error: {line or exit_code}")
        path = directory / OUTPUT
        if not path.exists():
            return missing_output(OUTPUT, exit_code)
        try:
            energy, weights = read_blocks(path)
            requested = int(json.loads((directory / "params.json").read_text())["nblocks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return ReadResult(verdict=Verdict.failed, reason=f"{path.name} or params.json unreadable: {exc}")
        return self.judge(energy, weights, requested, OUTPUT)

    def judge(self, energy: np.ndarray, weights: np.ndarray | None, requested: int,
              output: str) -> ReadResult:
        """The verdict for a block series (tests and benchmarks judge series without files)."""
        return read_result(self, energy, weights, self.warmup, requested, {"hdf": output})

    @classmethod
    def block_series(cls, directory: Path, outputs: Mapping[str, Path],
                     method: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        path = outputs.get("hdf", directory / OUTPUT)
        return read_blocks(path) if path.exists() else None

