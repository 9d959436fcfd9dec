"""QWalk method Writers: VMC, DMC, POSTPROCESS (OPTIMIZE and LINEAR are in :mod:`.optimizers`).

A run directory holds one input ``<run_id>.<method>`` (so QWalk's run id, and the prefix of
every output, is ``<run_id>.<method>``)::

    method { vmc nconfig 100 nblock 20 nstep 10 }
    include qw.sys
    trialfunc { include qw.wf }

Artifacts (names in a job; every file is copied into the run directory under its own name,
because QWalk resolves INCLUDE/ORBFILE against its working directory):

* ``qwalk_system`` (required): the ``.sys`` file, SYSTEM { ... } and PSEUDO { ... }.
* ``qwalk_wavefunction`` (required): a TRIALFUNC body: ``include qw.slater``, SLATER-JASTROW
  including the Slater and Jastrow files, or an optimizer's ``.wfout``.
* ``qwalk_slater``, ``qwalk_jastrow``, ``qwalk_orb``, ``qwalk_basis``: the files the wave
  function includes or names (ORBFILE); optional, but every file the input refers to must be
  present (checked before QWalk runs).
* ``wavefunction``: a QWalk optimizer's ``<run>.wfout`` (QWalkReader output); replaces
  ``qwalk_wavefunction`` when given (a file not ending in ``.wfout``, e.g. PyQMC's, is ignored).
* ``config``: the walkers ``<run>.config`` of an earlier VMC/DMC (QWalkReader output), read
  with READCONFIG by VMC, DMC and OPTIMIZE.
* ``qwalk_trace``: a DMC SAVE_TRACE file, required by POSTPROCESS.
* ``qwalk_twists`` and ``qwalk_<name>_k<i>``: every k-point of a ``kpoint = "all"`` conversion;
  VMC/DMC with ``twist = i`` use them in place of the plain names (:mod:`.twists`).

An input whose name collides with one of this run's own outputs is copied as ``input_<name>``.
STORECONFIG and WFOUTPUT are left at QWalk's defaults (``<run>.config``, ``<run>.wfout``)
because the Reader finds the outputs there.

Continuation: ``nblock`` is the total number of blocks wanted in ``<run>.log``; QWalk appends
NBLOCK *more* blocks when it continues, so ``write`` puts ``nblock - blocks already logged``
into the input. ``extend`` raises the total and sets READCONFIG to the run's own ``.config``;
for OPTIMIZE/LINEAR it makes the next attempt start from the run's last ``.wfout``.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ...errors import OptionError, ProgramNotFoundError
from ...naming import check_name
from ..base import ReadResult, Writer
from . import checks, twists
from .averages import Average
from .syntax import Section, dumps, format_number

log = logging.getLogger(__name__)

ENV_EXECUTABLE = "AUTOGENV2_QWALK"


def qwalk_executable() -> str:
    """The QWalk binary: ``$AUTOGENV2_QWALK``, else ``qwalk`` on PATH."""
    given = os.environ.get(ENV_EXECUTABLE)
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ProgramNotFoundError(f"qwalk not found: ${ENV_EXECUTABLE}={given} is not an executable "
                                       f"file; set {ENV_EXECUTABLE} to the QWalk binary, or unset it to use "
                                       "'qwalk' on PATH")
        return given
    found = shutil.which("qwalk")
    if found is None:
        raise ProgramNotFoundError(f"qwalk not found: set {ENV_EXECUTABLE} to the QWalk binary "
                                   "(e.g. /opt/qwalk/bin/qwalk), or put 'qwalk' on PATH")
    return found


class QWalkWriter(Writer):
    """Options and file handling shared by the QWalk methods."""

    method: ClassVar[str] = ""
    keywords: ClassVar[tuple[str, ...]] = ()
    """Fields written as ``KEYWORD value`` (in this order) when not None."""
    flags: ClassVar[tuple[str, ...]] = ()
    """Boolean fields written as a bare ``KEYWORD`` when True."""
    consumes: ClassVar[tuple[str, ...]] = ("qwalk_system", "qwalk_wavefunction")
    optional_inputs = ("qwalk_slater", "qwalk_jastrow", "qwalk_orb", "qwalk_basis", "wavefunction", "config")
    own_suffixes: ClassVar[tuple[str, ...]] = (".o", ".log", ".json", ".config", ".config.backup", ".wfout",
                                               ".vmcout", ".wfin")

    run_id: str = "qw"
    randomseed: tuple[int, int] | None = None
    """RANDOMSEED { i j } (positive integers) for reproducible runs; i is offset by the blocks done."""

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        return check_name(value, "run_id")

    @field_validator("randomseed")
    @classmethod
    def _seed(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) < 1:
            raise ValueError("RANDOMSEED needs two positive integers")
        return value

    @property
    def qwalk_run(self) -> str:
        """QWalk's run id = the input file name, prefix of every output."""
        return f"{self.run_id}.{self.method}"

    def reader_hints(self) -> dict[str, str]:
        """The Reader judges the input file this Writer wrote."""
        return {"run_id": self.qwalk_run}

    def check_program(self) -> None:
        qwalk_executable()

    def command(self) -> list[str]:
        argv = [qwalk_executable(), self.qwalk_run]
        if shutil.which("stdbuf") is None:
            log.warning("stdbuf not found: QWalk error messages may be lost when it aborts")
            return argv
        return ["stdbuf", "-oL", "-eL", *argv]

    def extend(self, result: ReadResult) -> None:
        for key, value in result.more.items():
            if key in self.sampling:
                setattr(self, key, value)

    # ------------------------------------------------------------------ writing
    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        directory = Path(directory)
        copied = self.copy_inputs(directory, inputs)
        done = self.blocks_done(directory)
        sections = [self.method_section(directory, copied, done)] * self.section_count()
        sections += self.final_sections()
        text = ""
        if self.randomseed is not None:
            text += f"randomseed {{ {self.randomseed[0] + done} {self.randomseed[1]} }}\n"
        text += "".join(dumps(Section("", [s])) for s in sections)
        text += f"include {copied['qwalk_system']}\n"
        text += f"trialfunc {{ include {self.trialfunc(directory, copied)} }}\n"
        what = f"{self.method} input {self.qwalk_run}"
        tree = checks.expanded_input(directory, text, what)
        self.check(directory, tree, what)
        (directory / self.qwalk_run).write_text(text)
        return [self.qwalk_run, *sorted(set(copied.values()))]

    def section_count(self) -> int:
        """How many identical METHOD sections the input holds."""
        return 1

    def final_sections(self) -> list[Section]:
        """METHOD sections after the repeated one (an optimizer's VMC of what it hands on)."""
        return []

    def copy_inputs(self, directory: Path, inputs: Mapping[str, Path]) -> dict[str, str]:
        """Copy the artifacts this method uses into ``directory``; return name -> file name."""
        missing = [name for name in self.consumes if name not in inputs]
        if missing:
            raise OptionError(f"{self.method}: missing input(s) {', '.join(missing)}")
        own = {self.qwalk_run + s for s in self.own_suffixes}
        copied: dict[str, str] = {}
        for name in (*self.consumes, *self.optional_inputs):
            if name not in inputs:
                continue
            source = Path(inputs[name])
            if name == "wavefunction" and source.suffix != ".wfout":
                log.info("ignoring input 'wavefunction' %s: not a QWalk .wfout", source)
                continue
            if not source.is_file():
                raise OptionError(f"{self.method}: input '{name}' file {source} does not exist")
            target = check_name(source.name if source.name not in own else f"input_{source.name}", name)
            if not (directory / target).exists() or not (directory / target).samefile(source):
                shutil.copyfile(source, directory / target)
            copied[name] = target
        return copied

    def trialfunc(self, directory: Path, copied: dict[str, str]) -> str:
        """The file included as the trial function."""
        return copied.get("wavefunction", copied["qwalk_wavefunction"])

    def blocks_done(self, directory: Path) -> int:
        """Blocks of this run's label already in its ``.log`` (0 for methods without blocks)."""
        return 0

    def keyword_items(self) -> list[str | Section]:
        items: list[str | Section] = [self.method.upper()]
        for name in self.keywords:
            value = getattr(self, name)
            if isinstance(value, str) and not re.fullmatch(r"[^\s{}#]+", value):
                raise OptionError(f"{self.method}: option '{name}' must be one word without braces "
                                  f"or '#', not {value!r}")
            if value is not None:
                items += [name.upper(), value if isinstance(value, str) else format_number(value)]
        items += [name.upper() for name in self.flags if getattr(self, name)]
        return items

    def method_section(self, directory: Path, copied: dict[str, str], done: int) -> Section:
        return Section("METHOD", self.keyword_items())

    def check(self, directory: Path, tree: Section, what: str) -> None:
        """Refuse inputs QWalk would fail on (see checks.py)."""
        nspin = checks.check_system(tree, what)
        checks.check_files(directory, tree, what)
        checks.check_states(tree, nspin, what)


class SamplingWriter(QWalkWriter):
    """VMC and DMC: blocks, walkers, READCONFIG continuation, average generators."""

    sampling = ("nblock",)
    default_nblock: ClassVar[int] = 100

    nblock: int | None = Field(None, ge=1, description="total blocks in the .log over all attempts")
    """QWalk's default is 100; continuations write only the blocks still missing."""
    nstep: int | None = Field(None, ge=1)
    nconfig: int | None = Field(None, ge=1)
    readconfig: str | None = None
    """Walker file in the run directory; default: input 'config' if given, else QWalk's own."""
    label: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$")
    low_io: bool = False
    dynamics: Literal["split", "unr"] | None = None
    averages: list[Average] = []
    attempt_limit: int | None = Field(None, ge=1,
                                      description="set by the Manager: blocks to reach this attempt")
    """Walltime sizing: this attempt stops at this many blocks in the .log (the rest comes next)."""
    twist: int | None = Field(None, ge=0)
    """Periodic runs: k-point ``twist`` of a ``kpoint = "all"`` conversion (:mod:`.twists`)."""

    @property
    def optional_inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*QWalkWriter.optional_inputs, *twists.input_names(self.twist))

    def copy_inputs(self, directory: Path, inputs: Mapping[str, Path]) -> dict[str, str]:
        return twists.copy_inputs(self, directory, inputs, super().copy_inputs)

    def reader_hints(self) -> dict[str, Any]:
        """The Reader also learns the total asked for, so a run sized short of it is incomplete."""
        total = self.nblock if self.nblock is not None else self.default_nblock
        return {**super().reader_hints(), "total_blocks": total}

    def extend(self, result: ReadResult) -> None:
        super().extend(result)
        self.readconfig = f"{self.qwalk_run}.config"

    def blocks_done(self, directory: Path) -> int:
        path = directory / f"{self.qwalk_run}.log"
        if not path.is_file():
            return 0
        label = (self.label or self.method).lower()
        found = re.findall(r"\bblock\s*\{\s*label\s+(\S+)", path.read_text(errors="replace"), flags=re.I)
        return sum(1 for f in found if f.lower() == label)

    def effective_readconfig(self, directory: Path, copied: dict[str, str]) -> str | None:
        """READCONFIG to write: the option if that file exists, else the upstream walkers."""
        own = f"{self.qwalk_run}.config"
        if self.readconfig is not None:
            check_name(self.readconfig, "readconfig")
            if (directory / self.readconfig).is_file():
                return self.readconfig
            if self.readconfig != own:
                raise OptionError(f"{self.method}: readconfig {self.readconfig} does not exist "
                                  f"in {directory}")
        return copied.get("config")

    def method_section(self, directory: Path, copied: dict[str, str], done: int) -> Section:
        items = self.keyword_items()
        total = self.nblock if self.nblock is not None else self.default_nblock
        if self.attempt_limit is not None:
            total = min(total, self.attempt_limit)
        if self.nblock is not None or done or self.attempt_limit is not None:
            items[1:1] = ["NBLOCK", str(max(total - done, 1))]
        readconfig = self.effective_readconfig(directory, copied)
        if readconfig is not None:
            items += ["READCONFIG", readconfig]
            self.check_config(directory / readconfig)
        items += ["LOW_IO"] if self.low_io else []
        if self.dynamics is not None:
            items.append(Section("DYNAMICS", [self.dynamics.upper()]))
        items.extend(a.section() for a in self.averages)
        return Section("METHOD", items)

    def check_config(self, path: Path) -> None:
        """Walker-count check for READCONFIG files (DMC only)."""


class VMCWriter(SamplingWriter):
    """VMC (QWalk defaults: nconfig 1, nblock 100, nstep 100, ndecorr 2, automatic timestep)."""

    method = "vmc"
    keywords = ("nconfig", "nstep", "ndecorr", "timestep", "label", "guidetype")
    timestep_option = "timestep"

    ndecorr: int | None = Field(None, ge=0)
    timestep: float | None = Field(None, gt=0)
    guidetype: Literal["sumsquares", "first"] | None = None

    @model_validator(mode="after")
    def _samples(self) -> VMCWriter:
        if (self.nconfig or 1) * (self.nstep or 100) == 1:
            raise ValueError("nconfig*nstep is 1: one sample per block makes QWalk die with SIGFPE; "
                             "raise nstep or nconfig")
        return self


class DMCWriter(SamplingWriter):
    """DMC; TIMESTEP is required. Defaults: nconfig 2048, nstep round(1/timestep), nblock 100."""

    method = "dmc"
    keywords = ("timestep", "nconfig", "nstep", "eref", "save_trace", "feedback", "start_feedback",
                "feedback_interval", "branch_start_cutoff", "max_poss_weight", "label")
    flags = ("tmoves", "tmovessc", "pure_dmc")
    timestep_option = "timestep"

    timestep: float = Field(gt=0)
    eref: float | None = None
    tmoves: bool | None = None
    """Casula T-moves. None (default): on when the system has a PSEUDO section (and ``tmovessc`` is
    off), as QWalk's own workflow does (``utils/autogen/job_control.py``: DMC ``localization =
    ['tmoves']``); QWalk itself defaults to the locality approximation. ``false`` switches it off."""
    tmovessc: bool = False
    pure_dmc: bool = False
    save_trace: str | None = None
    """File that gets every walker and weight of every block (binary; input of POSTPROCESS)."""
    feedback: float | None = Field(None, ge=0)
    start_feedback: float | None = Field(None, ge=0)
    feedback_interval: int | None = Field(None, ge=1)
    branch_start_cutoff: float | None = Field(None, gt=0)
    max_poss_weight: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _dmc(self) -> DMCWriter:
        if self.tmoves and self.tmovessc:
            raise ValueError("tmoves and tmovessc exclude each other")
        if self.save_trace is not None:
            check_name(self.save_trace, "save_trace")
        nstep = self.nstep if self.nstep is not None else max(round(1 / self.timestep), 1)
        if (self.nconfig or checks.DMC_DEFAULT_NCONFIG) * nstep == 1:
            raise ValueError("nconfig*nstep is 1: one sample per block makes QWalk die with SIGFPE")
        return self

    def check_config(self, path: Path) -> None:
        checks.check_walkers(path, self.nconfig, checks.DMC_DEFAULT_NCONFIG, f"dmc readconfig {path.name}")

    def method_section(self, directory: Path, copied: dict[str, str], done: int) -> Section:
        section = super().method_section(directory, copied, done)
        system = directory / copied["qwalk_system"]
        if self.tmoves is None and not self.tmovessc and checks.has_pseudo(system):
            section.items.insert(1, "TMOVES")
        return section


class PostprocessWriter(QWalkWriter):
    """POSTPROCESS of a DMC SAVE_TRACE file (input 'qwalk_trace') with average generators."""

    method = "postprocess"
    consumes = ("qwalk_system", "qwalk_wavefunction", "qwalk_trace")
    keywords = ("nskip",)
    flags = ("noenergy", "no_json")

    nskip: int | None = Field(None, ge=0, description="walker records to skip (warm-up blocks x walkers)")
    noenergy: bool = False
    no_json: bool = False
    averages: list[Average] = []

    def method_section(self, directory: Path, copied: dict[str, str], done: int) -> Section:
        items = self.keyword_items()
        items[1:1] = ["READCONFIG", copied["qwalk_trace"]]
        items.extend(a.section() for a in self.averages)
        return Section("METHOD", items)

