"""The QWalk Reader: its options (a pydantic model, validated like every Reader's) around the verdict of
:mod:`.verdict`, which holds the rules and needs no pydantic (``autogenv2 inspect`` uses it directly)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ...sampling_reader import SamplingReader
from ...states import Verdict
from ...stats import finite_or_none
from ..base import ReadResult
from .blocks import read_blocks
from .estimates import CONVERGENCE_SIGMAS, gosling_warmup, summarize
from .rundir import find_runs, find_streams, only_run
from .verdict import SAMPLING, Outcome, Settings, judge, load_run

__all__ = ["CONVERGENCE_SIGMAS", "QWalkReader", "find_runs", "find_streams", "gosling_warmup", "judge",
           "load_run", "only_run", "summarize"]

MethodName = Literal["vmc", "dmc", "optimize", "linear", "postprocess", "test"]


class QWalkReader(SamplingReader):
    """Reads a QWalk run directory. See :mod:`.verdict` for the rules."""

    run_id: str | None = None
    """The input file name (QWalk's run id); None: the one run in the directory."""
    method: MethodName | None = None
    """Which METHOD section's numbers to report (the last of that kind); None: the last section."""
    warmup: int | None = Field(default=None, ge=0)
    """Blocks dropped from the start of the merged series; None: gosling's rule."""
    total_blocks: int | None = Field(default=None, ge=1)
    """VMC/DMC: blocks asked for over all attempts (a hint from the writer); fewer = incomplete."""

    def settings(self) -> Settings:
        """The options the verdict depends on, as plain data (``Settings()`` holds the defaults)."""
        return Settings(self.method, self.warmup, self.total_blocks, self.limits())

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        directory = Path(directory)
        run_id = self.run_id or only_run(directory)
        if run_id is None:
            return ReadResult(verdict=Verdict.failed,
                              reason=f"nothing written: no QWalk run (<input>.o) in {directory}")
        stdout, stderr, _ = find_streams(directory, run_id)
        run = load_run(directory, run_id, stdout, stderr)
        result = judge(run, exit_code, self.settings()).result
        from .twists import per_cell, read_record  # not needed by ``inspect``

        result.results.update(read_record(directory))  # a twisted run: twist, kpoint, weight, ntwists
        result.results.update(per_cell(result.results))  # a supercell: energy and error per primitive cell
        return read_result(result)

    @classmethod
    def block_series(cls, directory: Path, outputs: Mapping[str, Path],
                     method: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Every attempt's blocks of the last ``method`` section, merged as the Reader merges them."""
        if method.upper() not in SAMPLING:
            return None
        return read_blocks(directory, method)

    @classmethod
    def iteration_trace(cls, result: Mapping[str, Any],
                        outputs: Mapping[str, Path]) -> tuple[np.ndarray, np.ndarray]:
        """Energy and error per LINEAR iteration (the results' ``iterations``); OPTIMIZE minimizes the
        variance and records no energies, so it gives none."""
        steps = [s for s in result.get("iterations") or [] if finite_or_none(s.get("energy")) is not None]
        energy = np.array([s["energy"] for s in steps], dtype=float)
        error = np.array([finite_or_none(s.get("error")) for s in steps], dtype=float)  # None -> nan
        return energy, error


def read_result(outcome: Outcome) -> ReadResult:
    """The ReadResult of a verdict."""
    return ReadResult(verdict=outcome.verdict, reason=outcome.reason, results=outcome.results,
                      outputs=outcome.outputs, more=outcome.more, retry=outcome.retry)
