"""The options every series-publishing Reader shares (:class:`SamplingReader`, a pydantic model) and the
ReadResult of a judged series; the estimate and the judge themselves are :mod:`autogenv2.sampling`
(numpy and plain data only, so ``autogenv2 inspect`` runs without pydantic)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .codes.base import Reader, ReadResult
from .sampling import CONFIDENCE, MAX_BLOCKS, MIN_BLOCKS, Limits, Verdict, WalkerGroups, judge, publish
from .states import Verdict as RunVerdict


class SamplingReader(Reader):
    """The options every series-publishing Reader shares (one definition, one set of limits)."""

    target_error: float | None = Field(default=None, gt=0,
                                       description="Ha; sample until the error bar is below")
    target_confidence: float = Field(default=CONFIDENCE, ge=0.5, lt=1,
                                     description="how sure the Reader must be that the true error is within "
                                                 "target_error (0.5: trust the estimate as it is)")
    min_blocks: int = Field(default=MIN_BLOCKS, ge=2,
                            description="blocks after warm-up needed for a trustworthy error")
    max_blocks: int = Field(default=MAX_BLOCKS, ge=1,
                            description="never ask for more blocks than this in total")

    def limits(self) -> Limits:
        return Limits(self.target_error, self.min_blocks, self.max_blocks, self.target_confidence)

    @classmethod
    def block_series(cls, directory: Path, outputs: Mapping[str, Path],
                     method: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The block energies and weights a finished run wrote (for the report's traces), or None.

        ``outputs``: the run's artifacts (as its ReadResult named them) resolved to paths; raises
        OSError, KeyError or ValueError when the files cannot be read.
        """
        return None


def read_result(reader: SamplingReader, energy: np.ndarray, weights: np.ndarray | None, warmup: int,
                requested: int | None, outputs: dict[str, str], walkers: WalkerGroups | None = None,
                key: str = "nblocks") -> ReadResult:
    """The ReadResult of a finished (or stopped) series whose Writer continues to ``{key: total blocks}``."""
    blocks = int(energy.size)
    published = publish(energy, weights, warmup, walkers)
    results: dict[str, Any] = {"blocks": blocks, "warmup": warmup}
    if published is not None:
        results.update(published.results(reader.target_confidence))
    need = judge(published, blocks, warmup, reader.limits(), requested)
    if need.verdict is Verdict.at_limit:
        return ReadResult(verdict=RunVerdict.failed, results=results, outputs=outputs, reason=need.why)
    if need.verdict is Verdict.more:
        return ReadResult(verdict=RunVerdict.incomplete, results=results, outputs=outputs,
                          more={key: need.blocks}, reason=f"{need.why}: continuing to {need.blocks} blocks")
    return ReadResult(verdict=RunVerdict.complete, results=results, outputs=outputs)


def missing_output(name: str, exit_code: int | None) -> ReadResult:
    """No block file: a killed run had not finished its first block (progress 0), else a failure."""
    if exit_code is not None and exit_code < 0:
        return ReadResult(verdict=RunVerdict.incomplete, reason="killed before the first block",
                          results={"blocks": 0})
    return ReadResult(verdict=RunVerdict.failed, reason=f"{name} was not written", retry=True)
