"""PyQMC: Slater-Jastrow optimization, VMC and DMC from a PySCF chkfile (the embedded engine)."""
from __future__ import annotations

from .reader import MCReader, OptimizeReader
from .writer import DMCWriter, OptimizeWriter, VMCWriter

METHODS = {"optimize": (OptimizeWriter, OptimizeReader), "vmc": (VMCWriter, MCReader),
           "dmc": (DMCWriter, MCReader)}

__all__ = ["METHODS", "DMCWriter", "MCReader", "OptimizeReader", "OptimizeWriter", "VMCWriter"]
