"""Level 1 of the design: the Writer and Reader contracts every code implements.

A *Writer* holds every option of one run as plain, validated attributes and writes that run's
input files. A *Reader* reads a run directory and returns a :class:`ReadResult`: the verdict
(complete / incomplete / failed with a reason) and the numbers. **The Reader defines success.**

Both are pydantic models: unknown options are refused and wrong types are reported with the
option's name; ``model_dump()`` is what status.json stores and ``Model(**dump)`` restores it.
"""
from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import OptionError, ProgramNotFoundError
from ..states import Verdict


class Options(BaseModel):
    """Base of Writers and Readers: strict, plain attributes, validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    @classmethod
    def build(cls, where: str, options: Mapping[str, Any]) -> Self:
        """Construct from user options; errors name ``where`` (job/step) and the option.

        A string where a number or flag is expected is refused, not coerced.
        """
        from ..preflight import refuse_strings

        refuse_strings(cls, options, where)
        try:
            return cls(**options)
        except ValidationError as exc:
            raise OptionError(format_validation_error(where, exc)) from None

    def validate_options(self) -> None:
        """Re-check all attributes (useful after plain attribute edits in a script)."""
        type(self).build(type(self).__name__, self.model_dump())


class Writer(Options):
    """Writes the input files of one run.

    Class attributes
    ----------------
    consumes : names of artifacts this run needs from earlier elements of its job
        (e.g. ``"chkfile"``, ``"wavefunction"``). Missing required ones are a plan error.
    physical : option names whose change means "redo this element and those after it";
        every other option only changes how much is sampled or how it is run.

    The Manager applies its policies (health fixes, walltime sizing, continuations) through the
    capabilities a Writer declares, never by option names: ``sampling`` (its first entry is the
    total) and ``sampling_unit``, ``timestep_option``, :meth:`limit_attempt` and :meth:`extend`; the
    plan's load checks call :meth:`preflight` and :meth:`check_program`.
    """

    consumes: ClassVar[tuple[str, ...]] = ()
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    sampling: ClassVar[tuple[str, ...]] = ()
    """Options whose increase means "sample more of the same run" (e.g. nblocks); the first is the
    run's sampling total (raised to sample more)."""
    sampling_unit: ClassVar[str] = "blocks"
    """What the sampling total counts ("blocks" or "iterations"): the key under which the Reader reports
    how many are done, the word progress lines show, and the scale of the plausibility check at load."""
    timestep_option: ClassVar[str | None] = None
    """The option holding the time step (halved when a population blows up), or None."""
    attempt_limit_option: ClassVar[str] = "attempt_limit"
    """The option, if the Writer has it, that stops an attempt early at a block count (walltime sizing)."""

    @classmethod
    def sampling_total(cls) -> str | None:
        """The option holding the run's total (blocks or iterations), or None when it has none."""
        return cls.sampling[0] if cls.sampling else None

    @classmethod
    def limits_attempts(cls) -> bool:
        """True when an attempt can be told to stop early at a block count (an ``attempt_limit`` option)."""
        return cls.attempt_limit_option in cls.model_fields

    def limit_attempt(self, blocks: int | None) -> bool:
        """Stop the next attempt once the run holds ``blocks`` blocks (None: run to the total).

        Returns True when that changed an option; Writers that cannot stop early ignore it.
        """
        key = self.attempt_limit_option
        if not self.limits_attempts() or getattr(self, key) == blocks:
            return False
        setattr(self, key, blocks)
        return True

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        """Write the input files into ``directory``; return their names. Must be idempotent."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The argument list that runs this run inside its directory (never a shell string)."""
        raise NotImplementedError

    def reader_hints(self) -> dict[str, Any]:
        """Reader options that follow from this Writer (e.g. the input file name it wrote)."""
        return {}

    def blocks_written(self, directory: Path) -> int | None:
        """Blocks the run in ``directory`` has written so far, read cheaply while it runs (None: unknown).

        Used only to show progress; the default asks the Writer's ``blocks_done(directory)`` if it has one.
        """
        done = getattr(self, "blocks_done", None)
        return int(done(directory)) if callable(done) else None

    def preflight(self, where: str) -> None:
        """Checks of this run's options made when the plan loads, beyond their types (e.g. that a molecule
        builds); raise OptionError as one line starting with ``where``. The default checks nothing."""

    def check_program(self) -> None:
        """Raise ProgramNotFoundError when the program this run starts is missing here.

        The default checks the ``python`` option (an interpreter other than the current one).
        """
        python = getattr(self, "python", None)
        if python and shutil.which(python) is None:
            raise ProgramNotFoundError(f"python {python!r} not found: give the interpreter's full path in "
                                       f"option 'python', or leave it out to use {sys.executable}")

    def extend(self, result: ReadResult) -> None:
        """Change options so that the next attempt continues the run (e.g. more blocks).

        Called when the Reader said ``incomplete``. The default does nothing: the same input
        is simply run again (a restartable code picks up where it stopped).
        """


class ReadResult(BaseModel):
    """A Reader's verdict and numbers for one run directory."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    reason: str = ""
    results: dict[str, Any] = Field(default_factory=dict)
    """Numbers to store and publish: energy, error, variance, blocks, ..."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """Artifacts for later elements, as paths relative to the run directory."""
    more: dict[str, Any] = Field(default_factory=dict)
    """For ``incomplete``: what the Writer should ask for next (e.g. ``{"nblocks": 240}``)."""
    retry: bool = False
    """For ``failed``: True when running the same input again may succeed (a crash, a kill)."""


class Reader(Options):
    """Reads a run directory and decides whether the run is complete."""

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        """Judge ``directory``. ``exit_code`` is the runner's, or None while it is unknown."""
        raise NotImplementedError


def format_validation_error(where: str, exc: ValidationError) -> str:
    """One line per problem: ``where: option 'x': message``."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err.get("loc", ())) or "(options)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown option"
        lines.append(f"{where}: option '{key}': {msg}")
    return "; ".join(lines)
