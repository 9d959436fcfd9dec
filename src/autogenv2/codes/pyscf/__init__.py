"""PySCF: the mean-field step (RHF/UHF/ROHF/RKS/UKS on molecules, Gamma-point cells)."""
from __future__ import annotations

from .reader import SCFReader
from .writer import SCFWriter

METHODS = {name: (SCFWriter, SCFReader) for name in ("rhf", "uhf", "rohf", "rks", "uks")}

__all__ = ["METHODS", "SCFReader", "SCFWriter"]
