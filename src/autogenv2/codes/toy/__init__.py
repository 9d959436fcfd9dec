"""Toy: a tiny, fast, *real* QMC-like engine for tests, demos and benchmarks.

Method ``mc`` runs a separate Python process (``run.py``, standard library only) that appends
AR(1)-correlated "energies" to ``blocks.json`` one block at a time, each block written
atomically, so a kill loses at most the block in progress. Like PyQMC it restarts by total:
running again with a larger ``nblocks`` continues the same series. Block ``i`` draws its noise
from a generator seeded by ``(seed, i)``, so a series is bitwise the same however many attempts
and kills it took. It does no physics; it exists so that crash, timing and scaling behaviour
of autogenv2 can be tested in seconds instead of minutes.
"""
from __future__ import annotations

from .reader import ToyReader
from .writer import ToyWriter

METHODS = {"mc": (ToyWriter, ToyReader)}

__all__ = ["METHODS", "ToyReader", "ToyWriter"]
