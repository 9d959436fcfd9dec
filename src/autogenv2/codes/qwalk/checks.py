"""Checks of a written QWalk input against the files beside it, run before QWalk is started.

Each check catches a mistake that the recorded runs show QWalk reporting too late (exit 0
with ``Error ...`` on stdout, an abort with the message lost, or a silent wrong run).
All raise :class:`~autogenv2.errors.OptionError` naming the option or file.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from ...errors import OptionError
from .syntax import InputSyntaxError, Section, expand_includes, parse_words, tokenize

DMC_DEFAULT_NCONFIG = 2048
"""QWalk's TARGET_CONFIG: DMC's walker count when NCONFIG is not given (serial run)."""


def expanded_input(directory: Path, text: str, what: str) -> Section:
    """Parse ``text`` with INCLUDEs resolved in ``directory``; a missing include is an OptionError."""
    try:
        return parse_words(expand_includes(tokenize(text), directory))
    except InputSyntaxError as exc:
        raise OptionError(f"{what}: {exc}") from None


def check_files(directory: Path, tree: Section, what: str) -> None:
    """Every ORBFILE of every (C)ORBITALS section must exist in the run directory."""
    for section in tree.walk():
        if section.name.upper() in ("ORBITALS", "CORBITALS"):
            orbfile = section.get("ORBFILE")
            if orbfile is None:
                raise OptionError(f"{what}: an {section.name} section has no ORBFILE")
            if not (directory / orbfile).is_file():
                raise OptionError(f"{what}: ORBFILE {orbfile} is missing from the run directory "
                                  "(give it as input 'qwalk_orb')")


def check_system(tree: Section, what: str) -> tuple[int, int]:
    """A SYSTEM section with NSPIN must be there; return NSPIN."""
    if not tree.sections("SYSTEM"):
        raise OptionError(f"{what}: no SYSTEM section (input 'qwalk_system' must hold SYSTEM {{ ... }})")
    nspin = read_nspin(tree)
    if nspin is None:
        raise OptionError(f"{what}: the SYSTEM section has no NSPIN {{ nup ndown }}")
    return nspin


def slater_sections(trialfunc: Section) -> list[Section]:
    """Every SLATER body inside a trial function (plain, WF1/WF2 of SLATER-JASTROW, ...)."""
    return [s for s in trialfunc.walk() if (s.type_word or "").upper() == "SLATER"]


def count_determinants(slater: Section) -> int:
    """Determinants of a SLATER body: DETWT entries, or the weights listed in CSF sections."""
    csfs = slater.sections("CSF")
    if csfs:
        return sum(max(len(c.words()) - 1, 0) for c in csfs)
    detwt = slater.section("DETWT")
    return len(detwt.words()) if detwt is not None else 0


def check_states(tree: Section, nspin: tuple[int, int], what: str) -> None:
    """STATES must hold ndet*(nup+ndown) orbital indices (NSPIN of the SLATER or the SYSTEM)."""
    for trialfunc in tree.sections("TRIALFUNC"):
        for slater in slater_sections(trialfunc):
            spins = nspin
            own = slater.section("NSPIN")
            if own is not None:
                spins = (int(own.words()[0]), int(own.words()[1]))
                if sum(spins) != sum(nspin):
                    raise OptionError(f"{what}: SLATER NSPIN {spins} and SYSTEM NSPIN {nspin} "
                                      "hold different electron counts")
            ndet = count_determinants(slater)
            for states in slater.sections("STATES"):
                expected = ndet * sum(spins)
                if len(states.words()) != expected:
                    raise OptionError(f"{what}: STATES lists {len(states.words())} orbitals but NSPIN "
                                      f"{spins} with {ndet} determinant(s) needs {expected}")


def has_parameters(trialfunc: Section) -> bool:
    """Whether an optimizer finds anything to vary (a Jastrow, or OPTIMIZE_DET/OPTIMIZE_MO)."""
    for section in trialfunc.walk():
        word = (section.type_word or "").upper()
        if word in ("JASTROW2", "JASTROW", "BACKFLOW", "PFAFFIAN", "BACKFLOW-PFAFFIAN", "BCS"):
            return True
        if word == "SLATER" and (section.has("OPTIMIZE_DET") or section.has("OPTIMIZE_MO")):
            return True
    return False


def check_no_optimizebasis(tree: Section, what: str) -> None:
    """LINEAR needs analytic parameter derivatives, which OPTIMIZEBASIS Jastrow groups lack."""
    for trialfunc in tree.sections("TRIALFUNC"):
        if any(s.has("OPTIMIZEBASIS") for s in trialfunc.walk()):
            raise OptionError(f"{what}: the Jastrow has OPTIMIZEBASIS, which LINEAR refuses "
                              "('Wavefunction needs to supports analytic parameter derivatives'); "
                              "convert with optimizebasis=False or use method 'optimize'")


def count_walkers(path: Path) -> int:
    """Walkers stored in a QWalk ``.config`` file (QWalk counts the word ``walker``)."""
    return sum(1 for word in tokenize(path.read_text()) if word.lower() == "walker")


def check_walkers(path: Path, nconfig: int | None, default: int, what: str) -> None:
    """DMC refuses a READCONFIG file with fewer walkers than NCONFIG ('Not enough configurations')."""
    wanted = nconfig if nconfig is not None else default
    have = count_walkers(path)
    if have < wanted:
        given = f"nconfig={nconfig}" if nconfig is not None else f"nconfig (default {default})"
        raise OptionError(f"{what}: {given} exceeds the {have} walkers in {path.name}; "
                          f"set nconfig <= {have} or store more walkers upstream")


def has_pseudo(system_file: Path) -> bool:
    """Whether a ``.sys`` file (INCLUDEs resolved beside it) holds a PSEUDO section."""
    try:
        words = expand_includes(tokenize(Path(system_file).read_text()), Path(system_file).parent)
    except (OSError, InputSyntaxError):
        return False
    return any(w.lower() == "pseudo" and nxt == "{" for w, nxt in itertools.pairwise(words))


def read_nspin(system: Section) -> tuple[int, int] | None:
    """NSPIN of a parsed input or .sys file (None when absent)."""
    for sec in system.sections("SYSTEM"):
        nspin = sec.section("NSPIN")
        if nspin is not None and len(nspin.words()) == 2:
            return int(float(nspin.words()[0])), int(float(nspin.words()[1]))
    return None
