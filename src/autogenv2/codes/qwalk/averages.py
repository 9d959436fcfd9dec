"""QWalk average generators (``average { ... }`` sections of VMC, DMC and POSTPROCESS)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..base import Options
from .syntax import Section
from .wavefunction import Orbitals


class RegionFluctuation(Options):
    """``average { REGION_FLUCTUATION maxn n }``: joint distribution of electron counts per atom."""

    kind: Literal["region_fluctuation"] = "region_fluctuation"
    maxn: int | None = Field(None, ge=1)

    def section(self) -> Section:
        items = ["REGION_FLUCTUATION"] + (["MAXN", str(self.maxn)] if self.maxn is not None else [])
        return Section("AVERAGE", list(items))


class TBDMBasis(Options):
    """``average { TBDM_BASIS ... }``: one-/two-body density matrices on a set of orbitals."""

    kind: Literal["tbdm_basis"] = "tbdm_basis"
    orbitals: Orbitals
    states: list[int] | None = None
    mode: Literal["obdm", "tbdm_diagonal"] | None = None
    npoints: int | None = Field(None, ge=1)
    nsteps_sample: int | None = Field(None, ge=1)

    def section(self) -> Section:
        items: list[str | Section] = ["TBDM_BASIS"]
        items += ["MODE", self.mode.upper()] if self.mode else []
        items += ["NPOINTS", str(self.npoints)] if self.npoints else []
        items += ["NSTEPS_SAMPLE", str(self.nsteps_sample)] if self.nsteps_sample else []
        if self.states is not None:
            items.append(Section("STATES", [str(s) for s in self.states]))
        items.append(self.orbitals.section())
        return Section("AVERAGE", items)


Average = Annotated[RegionFluctuation | TBDMBasis, Field(discriminator="kind")]
