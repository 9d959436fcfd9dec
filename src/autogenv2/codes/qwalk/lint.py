"""Lint of a QWalk run's input, read with our own parser (:mod:`.syntax`) and checks (:mod:`.checks`).

QWalk reads a METHOD section by looking up the keywords it knows and silently ignores every other
word (FORMAT.md §2.2; case ``fail_misspelled_keyword_ignored``: ``nblok 5 timestpe 0.5`` runs 100
blocks with an automatic timestep, exit 0, no warning). Our Writers refuse such keywords; this module
finds them in any input, ours or not, so ``inspect`` and the Reader can say that a run which QWalk
"finished" did not do what its input says. It also finds the input errors QWalk stops on (missing
INCLUDE or ORBFILE, unbalanced braces, no SYSTEM, STATES not matching NSPIN, DMC without TIMESTEP,
an unknown method), which name the cause when QWalk's own message was not captured.

The keyword tables are the words each method's ``read()`` looks up in QWalk mainline b12ea36
(``src/method/Vmc_method.cpp``, ``Dmc_method.cpp``, ``Optimize_method.cpp``,
``Linear_optimization.cpp``, ``Postprocess_method.cpp``, ``Test_method.cpp``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import OptionError
from . import checks
from .syntax import InputSyntaxError, Section, is_number, load

_SAMPLING_SECTIONS = frozenset({"AVERAGE", "DENSITY", "NONLOCAL_DENSITY", "PROPERTIES", "DYNAMICS"})
VALUED: dict[str, frozenset[str]] = {
    "VMC": frozenset({"NCONFIG", "NBLOCK", "NSTEP", "NDECORR", "TIMESTEP", "READCONFIG", "STORECONFIG",
                      "LABEL", "GUIDETYPE", "CONFIG_TRACE", "DATA_DUMP"}),
    "DMC": frozenset({"TIMESTEP", "NBLOCK", "NSTEP", "NCONFIG", "TARGET_CONFIG", "READCONFIG", "STORECONFIG",
                      "EREF", "SAVE_TRACE", "FEEDBACK", "START_FEEDBACK", "FEEDBACK_INTERVAL",
                      "BRANCH_START_CUTOFF", "MAX_POSS_WEIGHT", "LABEL"}),
    "OPTIMIZE": frozenset({"NCONFIG", "EREF", "ITERATIONS", "PSEUDOTEMP", "WFOUTPUT", "MIXING", "MINFUNCTION",
                           "READCONFIG"}),
    "LINEAR": frozenset({"TOTAL_NSTEP", "TOTAL_FIT", "ITERATIONS", "WFOUTPUT", "VMC_NSTEP", "FIT_NCONFIG",
                         "EN_CONVERGENCE", "SIG_H_THRESHOLD", "MINIMUM_PSI0", "MAX_VMC_NSTEP",
                         "MAX_FIT_NCONFIG", "MAX_ZERO_ITERATIONS", "SVD_TOLERANCE"}),
    "POSTPROCESS": frozenset({"READCONFIG", "NSKIP"}),
    "TEST": frozenset({"READCONFIG"}),
}
"""Keywords followed by one value, per method."""
FLAGS: dict[str, frozenset[str]] = {
    "VMC": frozenset({"LOW_IO", "PRINT_WF_VALS"}),
    "DMC": frozenset({"TMOVES", "TMOVESSC", "PURE_DMC", "ALL_ELECTRON", "LOW_IO", "CORR_HIST"}),
    "OPTIMIZE": frozenset({"USE_WEIGHTS", "EXTENDED_WFOUTPUT", "UPDATE_PSP"}),
    "LINEAR": frozenset({"UNCORRELATED_EVALUATION", "PSEUDOPOTENTIAL_DERIVATIVES",
                         "EVALUATE_PSEUDOPOTENTIAL"}),
    "POSTPROCESS": frozenset({"NOENERGY", "NO_JSON"}),
    "TEST": frozenset({"PLOT_EE_CUSP"}),
}
SECTIONS: dict[str, frozenset[str]] = {
    "VMC": _SAMPLING_SECTIONS, "DMC": _SAMPLING_SECTIONS | {"FW_LENGTH"}, "OPTIMIZE": frozenset(),
    "LINEAR": frozenset(), "POSTPROCESS": frozenset({"AVERAGE", "DENSITY"}),
    "TEST": frozenset({"BASIS", "BACKFLOW_TEST", "TEST_PARMS_DERS"}),
}
OTHER_METHODS = frozenset({"RNDMC", "REPTATION", "SHDMC", "NODES", "PLOT", "PLOT1D", "MAXIMIZE", "LOCALIZE",
                           "LOWDIN", "WANNIER", "ROTATE_ORBS"})
"""Methods QWalk has whose keywords are not linted here."""


@dataclass(frozen=True)
class Finding:
    """One problem of an input; ``ignored``: QWalk runs anyway, ignoring the word (else it stops)."""

    where: str
    message: str
    ignored: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _suggest(word: str, known: frozenset[str]) -> str:
    import difflib  # only for an unknown keyword: not on every read

    close = difflib.get_close_matches(word.upper(), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0].lower()}'?)" if close else ""


def unknown_keywords(kind: str, method: Section) -> list[str]:
    """Words of a METHOD section of ``kind`` that QWalk does not look up, each with a suggestion."""
    valued, flags, sections = VALUED[kind], FLAGS[kind], SECTIONS[kind]
    known = valued | flags | sections
    found: list[str] = []
    items, i = method.items, 1
    while i < len(items):
        item = items[i]
        i += 1
        if isinstance(item, Section):
            if item.name.upper() not in sections:
                found.append(f"section '{item.name}'{_suggest(item.name, known)}")
            continue
        word = item.upper()
        if word in valued:
            i += 1
        elif word not in flags:
            found.append(f"'{item}'{_suggest(item, known)}")
            if i < len(items) and isinstance(items[i], str) and is_number(str(items[i])):
                i += 1  # its value
    return found


def method_findings(index: int, method: Section) -> list[Finding]:
    """Unknown method type or keywords, and DMC without TIMESTEP, for METHOD ``index`` (0-based)."""
    kind = (method.type_word or "").upper()
    where = f"METHOD {index + 1} ({kind or 'empty'})"
    if kind not in VALUED:
        if kind in OTHER_METHODS:
            return []
        return [Finding(where, f"unknown method '{method.type_word}'{_suggest(kind, frozenset(VALUED))}")]
    found = [Finding(where, f"unknown keyword {word}", ignored=True)
             for word in unknown_keywords(kind, method)]
    if kind == "DMC" and method.get("TIMESTEP") is None:
        found.append(Finding(where, "DMC needs TIMESTEP"))
    return found


def _method_vs_input(index: int, method: Section, tree: Section) -> list[Finding]:
    """What QWalk stops on given the rest of the input: nothing to optimize, LINEAR on OPTIMIZEBASIS,
    one VMC sample per block (SIGFPE)."""
    kind = (method.type_word or "").upper()
    where = f"METHOD {index + 1} ({kind})"
    trialfuncs = tree.sections("TRIALFUNC")
    if kind in ("OPTIMIZE", "LINEAR") and trialfuncs and not checks.has_parameters(trialfuncs[0]):
        return [Finding(where, "the trial function has nothing to optimize (no Jastrow, no OPTIMIZE_DET)")]
    if kind == "LINEAR" and any(s.has("OPTIMIZEBASIS") for t in trialfuncs for s in t.walk()):
        return [Finding(where, "LINEAR cannot optimize an OPTIMIZEBASIS Jastrow")]
    if kind == "VMC":
        nconfig, nstep = method.get("NCONFIG") or "1", method.get("NSTEP") or "100"
        if is_number(nconfig) and is_number(nstep) and float(nconfig) * float(nstep) == 1:
            return [Finding(where, "nconfig*nstep is 1: one sample per block (QWalk dies of SIGFPE)")]
    return []


def lint_input(directory: Path, run_id: str) -> list[Finding]:
    """Every finding for input file ``run_id`` in ``directory`` (INCLUDEs resolved there, as QWalk does)."""
    path = Path(directory) / run_id
    if not path.is_file():
        return []
    try:
        tree = load(path)
    except (InputSyntaxError, OSError) as exc:
        return [Finding(run_id, str(exc))]
    methods = list(enumerate(tree.sections("METHOD")))
    found = [f for i, m in methods for f in (*method_findings(i, m), *_method_vs_input(i, m, tree))]
    for check in (_check_system, _check_files):
        try:
            check(Path(directory), tree, run_id)
        except OptionError as exc:
            found.append(Finding(run_id, str(exc).removeprefix(f"{run_id}: ")))
    return found


def _check_system(directory: Path, tree: Section, what: str) -> None:
    nspin = checks.check_system(tree, what)
    checks.check_states(tree, nspin, what)


def _check_files(directory: Path, tree: Section, what: str) -> None:
    checks.check_files(directory, tree, what)


def summary(findings: list[Finding], limit: int = 3) -> str:
    """Findings as one line (the first ``limit``)."""
    text = "; ".join(str(f) for f in findings[:limit])
    return text + (f"; and {len(findings) - limit} more" if len(findings) > limit else "")
