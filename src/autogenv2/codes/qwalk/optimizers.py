"""QWalk optimizers: OPTIMIZE (variance and other objectives) and LINEAR (energy), as Writers.

Both run ``repeats`` identical METHOD sections and continue from the run's own last ``.wfout``
after ``extend`` (the Reader asks for more when the last iterations have not converged). Then a VMC
of the wave function handed on (QWalk samples an optimizer's ``.wfout`` in the methods after it)
gives the element's energy: LINEAR's last ``current energy`` is that of the parameters *before* its
last step, and OPTIMIZE measures none.
"""
from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ...errors import OptionError
from ..base import ReadResult
from . import checks
from .syntax import Section
from .writer import QWalkWriter


class OptimizerWriter(QWalkWriter):
    """OPTIMIZE/LINEAR: ``repeats`` consecutive METHOD sections; ``resume`` starts from own .wfout."""

    sampling = ("iterations",)
    sampling_unit = "iterations"

    iterations: int | None = Field(None, ge=1)
    repeats: int = Field(1, ge=1, description="identical METHOD sections in a row (autogen's convention)")
    resume: bool = False
    """Start from this run's last ``.wfout`` when it exists (set by ``extend``)."""
    final_vmc_nblock: int = Field(60, ge=0, description="blocks of a VMC of the wave function handed on, "
                                  "after the last section: the element's energy (0: none)")
    final_vmc_nstep: int = Field(10, ge=1, description="its steps per block")
    final_vmc_nconfig: int = Field(100, ge=1, description="its walkers")

    def section_count(self) -> int:
        return self.repeats

    def final_sections(self) -> list[Section]:
        if not self.final_vmc_nblock:
            return []
        return [Section("METHOD", ["VMC", "NBLOCK", str(self.final_vmc_nblock), "NSTEP",
                                   str(self.final_vmc_nstep), "NCONFIG", str(self.final_vmc_nconfig)])]

    def extend(self, result: ReadResult) -> None:
        super().extend(result)
        self.resume = True

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        for suffix in (".log", ".json"):  # QWalk appends: the last attempt's final VMC, of older parameters
            (Path(directory) / f"{self.qwalk_run}{suffix}").unlink(missing_ok=True)
        return super().write(directory, inputs)

    def trialfunc(self, directory: Path, copied: dict[str, str]) -> str:
        wfout = directory / f"{self.qwalk_run}.wfout"
        if self.resume and wfout.is_file():
            shutil.copyfile(wfout, directory / f"{self.qwalk_run}.wfin")
            return f"{self.qwalk_run}.wfin"
        return super().trialfunc(directory, copied)

    def check(self, directory: Path, tree: Section, what: str) -> None:
        super().check(directory, tree, what)
        if not any(checks.has_parameters(t) for t in tree.sections("TRIALFUNC")):
            raise OptionError(f"{what}: the trial function has no parameters to optimize "
                              "(add a Jastrow, or OPTIMIZE_DET for several determinants)")


class OptimizeWriter(OptimizerWriter):
    """Variance (or other objective) minimization on a fixed sample (QWalk OPTIMIZE)."""

    method = "optimize"
    keywords = ("iterations", "nconfig", "eref", "minfunction", "mixing", "pseudotemp")
    flags = ("use_weights", "extended_wfoutput", "update_psp")

    nconfig: int | None = Field(None, ge=2)
    eref: float | None = None
    minfunction: Literal["variance", "absolute", "lorentz", "energy", "mixed"] | None = None
    mixing: float | None = Field(None, ge=0, le=1)
    pseudotemp: str | None = None
    use_weights: bool = False
    extended_wfoutput: bool = False
    update_psp: bool = False

    @model_validator(mode="after")
    def _mixing(self) -> OptimizeWriter:
        if self.mixing is not None and self.minfunction != "mixed":
            raise ValueError("mixing only applies to minfunction='mixed'")
        return self

    def method_section(self, directory: Path, copied: dict[str, str], done: int) -> Section:
        items = self.keyword_items()
        if "config" in copied:
            items += ["READCONFIG", copied["config"]]
        return Section("METHOD", items)


class LinearWriter(OptimizerWriter):
    """Energy minimization by the linear method (QWalk LINEAR); needs analytic derivatives."""

    method = "linear"
    keywords = ("iterations", "total_nstep", "total_fit", "en_convergence", "minimum_psi0", "vmc_nstep",
                "fit_nconfig", "max_vmc_nstep", "max_fit_nconfig", "sig_h_threshold")
    flags = ("uncorrelated_evaluation", "pseudopotential_derivatives")

    total_nstep: int | None = Field(None, ge=1)
    total_fit: int | None = Field(None, ge=1)
    en_convergence: float | None = Field(None, gt=0)
    minimum_psi0: float | None = Field(None, gt=0, le=1)
    vmc_nstep: int | None = Field(None, ge=1)
    fit_nconfig: int | None = Field(None, ge=1)
    max_vmc_nstep: int | None = Field(None, ge=1)
    max_fit_nconfig: int | None = Field(None, ge=1)
    sig_h_threshold: float | None = Field(None, gt=0)
    uncorrelated_evaluation: bool = False
    pseudopotential_derivatives: bool = False

    def check(self, directory: Path, tree: Section, what: str) -> None:
        super().check(directory, tree, what)
        checks.check_no_optimizebasis(tree, what)
