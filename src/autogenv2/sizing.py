"""Sizing attempts to their walltime, from what earlier attempts cost.

An attempt killed at its walltime is progress (its blocks are kept), but one that stops itself just
before is cleaner: its last block is complete and its outputs are consistent. From the measured
start-up and seconds per block of the attempts so far, the next attempt is told to stop at the block
count it can reach in :data:`WALLTIME_MARGIN` of the walltime (Writers that can: ``limit_attempt``).
"""
from __future__ import annotations

import numpy as np

from .codes.base import Writer
from .runners.base import Resources, walltime_seconds
from .status import Attempt

WALLTIME_MARGIN = 0.8
"""Fraction of the walltime an attempt is sized to fill (start-up and the last block need the rest)."""


def core_hours(attempts: list[Attempt], resources: Resources) -> float:
    """Wall time × cores used by the attempts so far."""
    cores = (resources.nodes or 1) * (resources.tasks or 1) * (resources.cpus_per_task or 1)
    return sum(a.seconds or 0.0 for a in attempts) * cores / 3600.0


def attempt_cost(attempts: list[Attempt]) -> tuple[float, float] | None:
    """(start-up seconds, seconds per block) measured over the attempts that made progress.

    With two or more different block counts a line ``seconds = a + b * blocks`` is fitted, so the
    start-up (imports, reading the walkers) is not charged to the blocks; with one, all of the
    time is charged to the blocks (conservative). None when nothing was measured yet.
    """
    points, before = [], 0
    for attempt in attempts:
        if attempt.blocks is None or attempt.seconds is None:
            continue
        gained, before = attempt.blocks - before, attempt.blocks
        if gained > 0:
            points.append((float(gained), attempt.seconds))
    if not points:
        return None
    blocks, seconds = (np.array(column) for column in zip(*points, strict=True))
    if len(set(blocks)) >= 2:
        slope, intercept = np.polyfit(blocks, seconds, 1)
        if slope > 0:
            return max(0.0, float(intercept)), float(slope)
    return 0.0, float(seconds.sum() / blocks.sum())


def attempt_limit(attempts: list[Attempt], done: int, walltime: float | None) -> int | None:
    """Blocks the next attempt should reach in all (``done`` so far), or None: run until done or killed.

    The first attempt has no measurement and simply runs (a kill is progress); at least one block more
    is always asked for.

    >>> first = Attempt(number=1, token="t", runner="r", started_at=0.0, ended_at=100.0, blocks=10)
    >>> attempt_limit([first], 10, 1000.0)
    90
    """
    cost = attempt_cost(attempts)
    if not walltime or cost is None:
        return None
    startup, per_block = cost
    return done + max(1, int((WALLTIME_MARGIN * walltime - startup) / per_block))


def size_to_walltime(writer: Writer, attempts: list[Attempt], done: int, resources: Resources) -> bool:
    """Tell ``writer`` where to stop its next attempt; True when that changed one of its options."""
    if not type(writer).limits_attempts():
        return False
    return writer.limit_attempt(attempt_limit(attempts, done, walltime_seconds(resources.walltime)))
