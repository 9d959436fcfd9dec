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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..base import Reader, Writer

_CLASSES = {"ConvertReader": "conversion", "ConvertWriter": "conversion", "QWalkReader": "reader",
            "LinearWriter": "optimizers", "OptimizeWriter": "optimizers", "DMCWriter": "writer",
            "PostprocessWriter": "writer", "VMCWriter": "writer"}
"""Imported on first use: ``autogenv2 inspect`` needs the reader, not the writers, PySCF conversion or
scipy."""
_TABLE = {"convert": ("ConvertWriter", "ConvertReader"), "vmc": ("VMCWriter", "QWalkReader"),
          "dmc": ("DMCWriter", "QWalkReader"), "optimize": ("OptimizeWriter", "QWalkReader"),
          "linear": ("LinearWriter", "QWalkReader"), "postprocess": ("PostprocessWriter", "QWalkReader")}


def _methods() -> dict[str, tuple[type[Writer], type[Reader]]]:
    return {method: (__getattr__(writer), __getattr__(reader)) for method, (writer, reader) in _TABLE.items()}


def __getattr__(name: str) -> Any:
    if name == "METHODS":
        table = _methods()
        globals()["METHODS"] = table
        return table
    if name in _CLASSES:
        value = getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "ConvertReader", "ConvertWriter", "DMCWriter", "LinearWriter", "OptimizeWriter",
           "PostprocessWriter", "QWalkReader", "VMCWriter"]
