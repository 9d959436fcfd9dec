"""The one sampling judge of every Reader that publishes a block series (PyQMC, QWalk, toy).

A Reader reads its code's files into a block series (energies, DMC weights, the warm-up it drops);
:func:`publish` turns the series into the published estimate (:func:`errorbar.publish`, or the walker
groups' windowed error where a run recorded them) and :func:`judge` decides whether the run has
sampled enough. The Reader only maps the :class:`Need` onto its own option name (``nblocks``,
``nblock``) and its verdict.

Everything here is numpy and plain data: the Readers' shared options (``target_error``, ``min_blocks``,
...) are the pydantic model :class:`autogenv2.sampling_reader.SamplingReader`, which hands them over as
:class:`Limits`, so ``autogenv2 inspect`` judges a run without importing pydantic.

The limits, decided once here (PyQMC's and QWalk's Readers used to judge apart):

- ``min_blocks`` = 10 blocks *after* warm-up, at least 2 (both defaulted to 10; QWalk allowed 1, which
  gives no error bar). Always required: QWalk waived it when the planned total had run and its
  automatic warm-up took no more than a fifth of it, PyQMC never did; the stricter rule is kept, since
  an error bar from fewer blocks has fewer than 9 degrees of freedom.
- ``max_blocks`` = 20000 blocks in total (PyQMC's; QWalk had no cap and could ask for more without
  end): a run whose target would need more is failed with the reason.
- Fewer than ``min_blocks``: only ``min_blocks`` are asked for; the target is planned from a longer
  series (PyQMC's; QWalk also planned from the short one, whose error is too noisy to size a run).
- Fewer blocks than the plan asked for (``requested``): continue at least to the plan; every unmet
  requirement counts and the largest total wins (QWalk's; PyQMC asked only for the plan first, so a
  killed run learnt on a later attempt that it needed more).
- ``target_error``: planned by :func:`stats.samples_to_target` (low-noise windowed error, stop on its
  ``target_confidence`` upper bound; both Readers already did this, with 0.95).
- One block after warm-up publishes its mean with no error bar (QWalk's; PyQMC published nothing below
  two); none publishes nothing.

Measured on the 38 recorded QWalk cases × 4 option sets (none, target 3e-3 and 5e-4 Ha, warm-up 2):
verdicts, continuations and every published number are unchanged; ``reblock_size`` is new in QWalk's
results. PyQMC/toy series that ran their plan are judged as before; a stopped one now names its
continuation (``nblocks``) at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from . import errorbar, health, stats

MIN_BLOCKS = 10
"""Blocks after warm-up before an error bar is trusted or a target planned."""
MAX_BLOCKS = 20000
"""Blocks in total a run is never asked to exceed."""
CONFIDENCE = 0.95
"""Default certainty that the true error is within ``target_error``."""


@dataclass(frozen=True)
class Limits:
    """What a run must reach: an error bar within ``target_error`` (None: no target), ``min_blocks``
    after warm-up, never more than ``max_blocks`` in all, at ``confidence``."""

    target_error: float | None = None
    min_blocks: int = MIN_BLOCKS
    max_blocks: int = MAX_BLOCKS
    confidence: float = CONFIDENCE


@dataclass(frozen=True)
class WalkerGroups:
    """Block means (blocks × G) of G groups of independent walkers, and each group's walker count;
    ``populations``: DMC populations, each branched on its own (their weighted block energies)."""

    means: np.ndarray
    sizes: np.ndarray
    populations: bool = False

    def series(self) -> np.ndarray:
        """The block series over all walkers (each group weighted by its walkers)."""
        return np.asarray(self.means @ self.sizes / self.sizes.sum(), dtype=float)


@dataclass(frozen=True)
class Published:
    """The estimate a Reader publishes for a series, and the low-noise error it plans with."""

    estimate: stats.Estimate      # mean, published error (and ``reliable``), reblocking level, variance
    precision: stats.Precision    # windowed-autocorrelation error: plans and bounds the target
    quality: dict[str, Any]       # error_reblocked, error_dof, error_95, reliable, ... (errorbar)
    health: list[dict[str, Any]]  # health.check_series findings

    def results(self, confidence: float = CONFIDENCE) -> dict[str, Any]:
        """The numbers a Reader stores (JSON-safe; non-finite numbers become None)."""
        est, finite = self.estimate, stats.finite_or_none
        bound = self.precision.upper(stats.confidence_z(confidence))
        return {"energy": finite(est.mean), "error": finite(est.error), "variance": finite(est.variance),
                "reblock_size": est.block_size, "reliable": est.reliable,
                "autocorrelation_time": finite(self.precision.tau), "error_bound": finite(bound),
                "health": self.health, **self.quality}


def publish(energy: np.ndarray, weights: np.ndarray | None, warmup: int, walkers: WalkerGroups | None = None,
            walker_weight: np.ndarray | None = None, sample_variance: np.ndarray | None = None
            ) -> Published | None:
    """The published estimate of ``energy[warmup:]``; None with no block after warm-up (one block: its
    mean, no error bar).

    ``weights`` weight the blocks' mean (DMC). ``walker_weight``: the mean walker weight per block for
    the population check (default ``weights``). ``sample_variance``: each block's variance of its
    samples, where the code records it (QWalk), for :func:`errorbar.tail_floor`. With ``walkers``
    (VMC's block means of independent walker groups) the error bar published and planned with is
    :func:`stats.precision_walkers`, about √G times surer of itself than any error of the one averaged
    series; the reblocked one stays beside it. DMC populations publish the all-walker weighted mean
    (PyQMC's ``energytotal`` by ``weight``), the error their scatter, and ``population_shift``: the
    mean of the populations' own energies minus it, what combing each population on its own moved
    (docs/benchmarks.md "PyQMC DMC: populations").
    """
    if energy.size - warmup < 1:
        return None
    with np.errstate(all="ignore"):
        pub = errorbar.publish(energy, weights, warmup=warmup, sample_variance=sample_variance)
        est, quality = pub.estimate, pub.results()
        if walkers is None:
            prec = stats.precision(energy, weights, warmup=warmup)
        else:
            prec = stats.precision_walkers(walkers.means, walkers.sizes, warmup, walkers.populations)
            kind = "DMC populations" if walkers.populations else "walker groups"
            quality = {"error_reblocked": pub.reblocked, "error_method": f"{walkers.means.shape[1]} {kind}"}
            if math.isfinite(prec.error):
                est = replace(est, error=prec.error, reliable=prec.reliable)
                quality |= errorbar.from_precision(prec)
            if walkers.populations:
                quality["population_shift"] = float(walkers.series()[warmup:].mean() - est.mean)
        found = health.check_series(energy, weights if walker_weight is None else walker_weight, warmup)
    return Published(est, prec, quality, found)


class Verdict(str, Enum):
    """The sampling verdict: enough (no target), the target error met, more blocks, or capped."""

    enough = "enough"
    error_met = "error met"
    more = "more"
    at_limit = "at max_blocks"


@dataclass(frozen=True)
class Need:
    """:func:`judge`'s answer: the verdict, the total blocks to reach, and why."""

    verdict: Verdict
    blocks: int    # total blocks the run should have (the blocks it has unless ``verdict`` is more)
    have: int      # total blocks it has
    why: str = ""

    @property
    def more(self) -> int:
        """Blocks still to run."""
        return max(self.blocks - self.have, 0)

    @property
    def done(self) -> bool:
        return self.verdict in (Verdict.enough, Verdict.error_met)


def judge(published: Published | None, blocks: int, warmup: int, limits: Limits,
          requested: int | None = None) -> Need:
    """Whether ``blocks`` (``warmup`` of them dropped) are enough under ``limits``; see the module docstring.

    ``requested``: the blocks the plan asked for over all attempts (fewer ran: a stopped run).
    """
    used = blocks - warmup
    short = requested is not None and blocks < requested
    wants: list[tuple[int, str]] = []
    if short:
        wants.append((int(requested or 0), f"stopped after {blocks} of {requested} blocks"))
    if used < limits.min_blocks or published is None:
        wants.append((warmup + limits.min_blocks,
                      f"{max(used, 0)} blocks after warm-up, fewer than min_blocks={limits.min_blocks}"))
    elif limits.target_error is not None:
        z = stats.confidence_z(limits.confidence)
        total, why = stats.samples_to_target(published.estimate, published.precision, limits.target_error, z)
        if total:
            wants.append((warmup + total, why))
    if not wants:
        return Need(Verdict.enough if limits.target_error is None else Verdict.error_met, blocks, blocks)
    why = "; ".join(text for _, text in wants)
    total = min(max(want for want, _ in wants), limits.max_blocks)
    if short:
        total = max(total, int(requested or 0))
    if total <= blocks:
        return Need(Verdict.at_limit, blocks, blocks, f"{why} at max_blocks {limits.max_blocks}")
    return Need(Verdict.more, total, blocks, why)
