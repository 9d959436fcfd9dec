"""PyQMC Writers: a self-contained ``run.py`` plus ``params.json`` per run directory.

"Run more" is PyQMC's restart-by-total: calling the same recipe again with the same HDF5
output and a larger ``nblocks`` (``max_iterations``) continues from the stored walkers
(parameters). So an attempt is always the same script; ``extend`` only raises the total.
The seed is offset by the blocks already done, so a continuation never replays the
random numbers of the first attempt. A VMC also records each block's mean energy of
``walker_groups`` sets of walkers (``energygroups``), from which the Reader's error bar
knows itself several times better (stats.precision_walkers); an optimization records them
for each iteration's VMC (the Reader's per-iteration error). A DMC splits its walkers into
``walker_groups`` populations, each combed on its own, and records each one's weighted energy per
block: independent runs in one, whose scatter is the error bar.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ..base import ReadResult, Writer
from .script import SCRIPT

MIN_POPULATION = 10
"""Fewest walkers in one DMC population (H2: populations of 12 showed no bias within ±0.3 mHa)."""
FINAL_VMC = "final.hdf5"
"""An optimization's VMC of the parameters it hands on (:class:`OptimizeWriter`)."""


class PyQMCWriter(Writer):
    """Options shared by every PyQMC method."""

    method_name: ClassVar[str] = ""
    output: ClassVar[str] = ""
    counter: ClassVar[str] = "block"
    consumes = ("chkfile",)
    optional_inputs = ("wavefunction",)

    nconfig: int = Field(1000, ge=2, description="walkers; must stay the same across continuations")
    seed: int = Field(1, ge=0)
    jastrow_kws: dict[str, Any] | None = None
    supercell: list[list[int]] | None = None
    """Periodic runs: the supercell matrix S (rows = supercell vectors in primitive ones)."""
    twist: int | None = Field(None, ge=0)
    """Periodic runs: which twist of the supercell (PyQMC ``slater_kws={"twist": i}``);
    a k-point SCF needs it or ``supercell`` (S defaults to the identity)."""
    python: str | None = None

    @field_validator("supercell")
    @classmethod
    def _three_by_three(cls, value: list[list[int]] | None) -> list[list[int]] | None:
        if value is not None and (len(value) != 3 or any(len(row) != 3 for row in value)):
            raise ValueError("supercell must be a 3x3 integer matrix, e.g. [[2,0,0],[0,1,0],[0,0,1]]")
        return value

    def recipe_options(self) -> dict[str, Any]:
        """Keyword arguments of the PyQMC recipe besides chkfile/output/load_parameters."""
        options: dict[str, Any] = {"nconfig": self.nconfig}
        if self.jastrow_kws:
            options["jastrow_kws"] = self.jastrow_kws
        if self.supercell is not None or self.twist is not None:
            options["S"] = self.supercell or [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        if self.twist is not None:
            options["slater_kws"] = {"twist": self.twist}
        return options

    def extra_params(self) -> dict[str, Any]:
        """Settings for ``run.py`` that are not options of the PyQMC recipe."""
        return {}

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        wavefunction = inputs.get("wavefunction")
        params = {
            "method": self.method_name, "output": self.output, "counter": self.counter, "seed": self.seed,
            "chkfile": os.path.relpath(inputs["chkfile"], directory),
            "wavefunction": os.path.relpath(wavefunction, directory) if wavefunction else None,
            "options": self.recipe_options(), **self.extra_params(),
        }
        limit = getattr(self, "attempt_limit", None)
        if "nblocks" in params["options"]:
            params["total_blocks"] = params["options"]["nblocks"]  # what the element needs in all
            if limit is not None:  # this attempt stops cleanly here (sized to the walltime)
                params["options"]["nblocks"] = min(limit, params["options"]["nblocks"])
        (directory / "params.json").write_text(json.dumps(params, indent=1))
        (directory / "run.py").write_text(SCRIPT.format(method=self.method_name))
        return ["params.json", "run.py"]

    def command(self) -> list[str]:
        return [self.python or sys.executable, "run.py"]

    def blocks_written(self, directory: Path) -> int | None:
        """Blocks (optimization: iterations) in the output so far, read without taking PyQMC's file lock."""
        import h5py

        try:
            with h5py.File(directory / self.output, "r", locking=False) as handle:
                return len(handle[self.counter]) if self.counter in handle else 0
        except (OSError, KeyError, ValueError, TypeError):
            return None


class OptimizeWriter(PyQMCWriter):
    """Energy minimization of the Jastrow factor (PyQMC ``OPTIMIZE``, line minimization).

    Each iteration's VMC also records the block means of ``walker_groups`` sets of walkers
    (``energygroups`` in opt.hdf5, appended in PyQMC's own per-iteration write, so a kill or a
    continuation keeps it aligned with ``energy``); the Reader's per-iteration error comes from
    their scatter. After the last iteration, a VMC of the parameters handed on (``final.hdf5``,
    ``final_vmc_blocks``) gives the element's energy, which the stopping rule has not seen.
    """

    method_name = "OPTIMIZE"
    output = "opt.hdf5"
    counter = "energy"
    sampling = ("max_iterations",)
    sampling_unit = "iterations"

    max_iterations: int = Field(10, ge=1, description="total iterations over all attempts")
    vmc_nblocks: int = Field(10, ge=1)
    vmc_nsteps_per_block: int = Field(10, ge=1)
    vmc_tstep: float = Field(0.5, gt=0)
    walker_groups: int = Field(32, ge=0, description="record each iteration's block means of this many "
                               "sets of walkers (≤ nconfig; 0: none): the per-iteration errors")
    final_vmc_blocks: int = Field(10, ge=0, description="blocks of a VMC of the parameters handed on, run "
                                  "after the last iteration (0: none; needs walker_groups): the energy")
    final_vmc_warmup_blocks: int = Field(10, ge=1, description="its blocks dropped first (fresh walkers)")

    def extra_params(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"walker_groups": min(self.walker_groups, self.nconfig)}
        if self.final_vmc_blocks and extra["walker_groups"] >= 2:
            extra["final_vmc"] = {"output": FINAL_VMC, "nblocks": self.final_vmc_blocks,
                                  "warmup_blocks": self.final_vmc_warmup_blocks,
                                  "nsteps_per_block": self.vmc_nsteps_per_block, "tstep": self.vmc_tstep}
        return extra

    def recipe_options(self) -> dict[str, Any]:
        options = super().recipe_options()
        options["max_iterations"] = self.max_iterations
        options["vmcoptions"] = {"nblocks": self.vmc_nblocks, "nsteps_per_block": self.vmc_nsteps_per_block,
                                 "tstep": self.vmc_tstep}
        return options

    def extend(self, result: ReadResult) -> None:
        self.max_iterations = int(result.more.get("max_iterations", self.max_iterations))


class VMCWriter(PyQMCWriter):
    """Variational Monte Carlo (PyQMC ``VMC``)."""

    method_name = "VMC"
    output = "vmc.hdf5"
    sampling = ("nblocks",)
    timestep_option = "tstep"

    nblocks: int = Field(20, ge=1, description="total blocks over all attempts")
    attempt_limit: int | None = Field(None, ge=1,
                                      description="set by the Manager: blocks to reach this attempt")
    nsteps_per_block: int = Field(10, ge=1)
    tstep: float = Field(0.5, gt=0)

    walker_groups: int = Field(32, ge=0, description="record block means of this many sets of walkers "
                               "(≤ nconfig; 0: none): they make the error bar about √G times surer of itself")

    def recipe_options(self) -> dict[str, Any]:
        options = super().recipe_options()
        options.update(nblocks=self.nblocks, nsteps_per_block=self.nsteps_per_block, tstep=self.tstep)
        return options

    def extra_params(self) -> dict[str, Any]:
        return {"walker_groups": min(self.walker_groups, self.nconfig)}

    def extend(self, result: ReadResult) -> None:
        self.nblocks = int(result.more.get("nblocks", self.nblocks))


class DMCWriter(PyQMCWriter):
    """Diffusion Monte Carlo (PyQMC ``DMC``); each block is ``nsteps_per_block * tstep`` au.

    The walkers are split into ``walker_groups`` populations (``numpy.array_split``, at least
    ``MIN_POPULATION`` walkers each); run.py combs each within itself and gives every one the same
    total weight, so they are independent DMC runs propagated together (one vectorized step, one
    file). Their energies per block
    (``energygroups`` ÷ ``energygroupweight``) carry every correlation of a run into the scatter of
    their run means, which one population's blocks do not show (docs/benchmarks.md "PyQMC DMC:
    populations").
    """

    method_name = "DMC"
    output = "dmc.hdf5"
    sampling = ("nblocks",)
    timestep_option = "tstep"

    nblocks: int = Field(100, ge=1, description="total blocks over all attempts")
    attempt_limit: int | None = Field(None, ge=1,
                                      description="set by the Manager: blocks to reach this attempt")
    tstep: float = Field(0.02, gt=0)
    nsteps_per_block: int | None = Field(None, ge=1, description="default max(1, int(0.1/tstep))")
    walker_groups: int = Field(16, ge=0, description="split the walkers into this many populations (at "
                               f"least {MIN_POPULATION} walkers each), each branched on its own (0: one "
                               "population): the error bar is their scatter")

    def extra_params(self) -> dict[str, Any]:
        groups = min(self.walker_groups, self.nconfig // MIN_POPULATION)
        return {"walker_groups": groups if groups >= 2 else 0}

    def recipe_options(self) -> dict[str, Any]:
        options = super().recipe_options()
        options.update(nblocks=self.nblocks, tstep=self.tstep)
        if self.nsteps_per_block:
            options["nsteps_per_block"] = self.nsteps_per_block
        return options

    def extend(self, result: ReadResult) -> None:
        self.nblocks = int(result.more.get("nblocks", self.nblocks))
