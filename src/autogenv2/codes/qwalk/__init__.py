"""QWalk: PySCF conversion, VMC, DMC, variance and energy optimization, postprocessing.

Artifacts passed between the elements of a job (details in :mod:`.writer`):
``qwalk_system`` (.sys), ``qwalk_wavefunction`` (trial-function body), ``qwalk_slater``,
``qwalk_jastrow``, ``qwalk_orb``, ``qwalk_basis`` (written by ``convert``), ``wavefunction``
(an optimizer's ``.wfout``) and ``config`` (VMC/DMC walkers), ``qwalk_trace`` (DMC SAVE_TRACE);
for twist averaging ``qwalk_twists`` and ``qwalk_<name>_k<i>`` (:mod:`.twists`).
Every method's Reader accepts the same options (run_id, method, target_error, target_confidence,
min_blocks, warmup).
"""
from __future__ import annotations

from .conversion import ConvertReader, ConvertWriter
from .reader import QWalkReader
from .optimizers import LinearWriter, OptimizeWriter
from .writer import DMCWriter, PostprocessWriter, VMCWriter

METHODS = {
    "convert": (ConvertWriter, ConvertReader),
    "vmc": (VMCWriter, QWalkReader),
    "dmc": (DMCWriter, QWalkReader),
    "optimize": (OptimizeWriter, QWalkReader),
    "linear": (LinearWriter, QWalkReader),
    "postprocess": (PostprocessWriter, QWalkReader),
}

__all__ = ["METHODS", "ConvertReader", "ConvertWriter", "DMCWriter", "LinearWriter", "OptimizeWriter",
           "PostprocessWriter", "QWalkReader", "VMCWriter"]
