"""Checks made when a plan is loaded, so that mistakes surface before anything runs.

* strings where a number or flag is expected (``tstep = "0.02"``) are refused, not coerced;
* a PySCF step's molecule must build: every basis and ECP name resolves for every element,
  the atoms parse, and the electron count fits the spin and the method;
* a sampling total or iteration count far beyond any plausible run needs ``max_core_hours``;
* the program a local step starts (QWalk, a Python interpreter) must exist (:func:`check_programs`;
  remote steps are checked at their first attempt by the Manager).

Every error is one line naming the file, job, step and option.
"""
from __future__ import annotations

import difflib
import io
import json
import re
import types
import warnings
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from .errors import AutogenError, OptionError, PlanError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .codes.base import Writer
    from .plan import Plan, Step

PLAUSIBLE = {"nblocks": 10**6, "nblock": 10**6, "max_iterations": 10**4}
"""Sampling totals above these need an explicit ``max_core_hours`` (no real run gets near them)."""
FASTEST_SECONDS = {"nblocks": 0.01, "nblock": 0.01, "max_iterations": 1.0}
"""A generous lower bound of the seconds one block / iteration takes, for the cost estimate."""

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_MOLECULES: dict[str, str | None] = {}
"""Molecule checks already made in this process: options (JSON) -> error message or None."""


# ------------------------------------------------------------------ strict types
def accepts_string(annotation: Any) -> bool:
    """Whether a field of this type may be given as a string (str, Path, str enum, str Literal, Any)."""
    if annotation is Any or annotation is str:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (str, Path)) or (issubclass(annotation, Enum)
                                                       and issubclass(annotation, str))
    origin = get_origin(annotation)
    if origin is Literal:
        return any(isinstance(arg, str) for arg in get_args(annotation))
    if origin is Annotated:
        return accepts_string(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(accepts_string(arg) for arg in get_args(annotation))
    return False


def expected(annotation: Any) -> str:
    """A few words for what a non-string field wants."""
    text = str(annotation)
    if "bool" in text:
        return "true or false"
    if "int" in text and "float" not in text:
        return "an integer"
    if "float" in text or "int" in text:
        return "a number"
    return "a value that is not a string"


def refuse_strings(model: type[BaseModel], options: Mapping[str, Any], where: str) -> None:
    """OptionError for the first string given where the model expects a number, flag or list."""
    for key, value in options.items():
        field = model.model_fields.get(key)
        if field is None or not isinstance(value, str) or accepts_string(field.annotation):
            continue
        raise OptionError(f"{where}: option '{key}': expected {expected(field.annotation)}, got the string "
                          f"{value[:40]!r} (write it without quotes)")


# ------------------------------------------------------------------ PySCF
def check_molecule(writer: Writer, where: str) -> None:
    """Build the PySCF molecule of an SCF Writer once (no integrals): names, parsing, electrons, spin."""
    keys = ("atom", "unit", "basis", "ecp", "charge", "spin", "method")
    options = {key: getattr(writer, key) for key in keys}
    # the numbers do not change what is checked: a scan over geometries builds one molecule
    cache_key = json.dumps({**options, "atom": NUMBER.sub("#", options["atom"])}, sort_keys=True)
    if cache_key not in _MOLECULES:
        _MOLECULES[cache_key] = _molecule_problem(options)
    problem = _MOLECULES[cache_key]
    if problem:
        raise OptionError(f"{where}: {problem}")


def _molecule_problem(options: dict[str, Any]) -> str | None:
    from pyscf import gto

    gto.mole.DISABLE_EVAL = True  # else PySCF eval()s coordinates it cannot read as numbers: user text

    try:  # PySCF prints some warnings itself ("Basis not found for atom ..."): they become our one line
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            mol = gto.M(atom=options["atom"], unit=options["unit"], basis=options["basis"],
                        ecp=options["ecp"], charge=options["charge"], spin=options["spin"], verbose=0)
    except Exception as exc:  # noqa: BLE001 - PySCF raises many kinds; each becomes one line
        return _explain(exc, options)
    bare = [mol.atom_symbol(i) for i, row in enumerate(mol.aoslice_by_atom()) if row[0] == row[1]]
    if bare:
        return f"option 'basis': no basis for {bare[0]} (the table {options['basis']!r} does not name it)"
    if options["ecp"] is None:
        for i in range(mol.natm):
            name = _basis_name(options["basis"], mol.atom_symbol(i), mol.atom_pure_symbol(i))
            if "ecp" in name.lower() and mol.atom_charge(i) > 2:
                return (f"option 'ecp': basis {name!r} is made for a pseudopotential, but ecp is not set: "
                        f"add ecp = 'ccecp' (or the ECP it belongs to), or use an all-electron basis")
    method = options["method"]
    if method in ("rhf", "rks") and mol.spin != 0:
        return (f"option 'method': {method!r} needs a closed shell, but spin = {mol.spin} "
                f"({_electrons(mol.nelectron)}); use 'rohf' or 'uhf' (or 'uks')")
    return None


def _basis_name(basis: Any, label: str, symbol: str) -> str:
    """The basis name used for one atom (a plain name, or its entry in a table)."""
    if isinstance(basis, str):
        return basis
    value = basis.get(label, basis.get(symbol, basis.get("default", "")))
    return value if isinstance(value, str) else ""


def _explain(exc: Exception, options: dict[str, Any]) -> str:
    """PySCF's complaint as ``option 'key': what is wrong``."""
    text = " ".join(str(exc).split())
    if "ECP" in text:  # before the basis test: PySCF 2.8 raises BasisNotFoundError for an unknown ECP too
        return f"option 'ecp': {_unknown_name(text, options['ecp'], 'ECP')}"
    if type(exc).__name__ == "BasisNotFoundError" or "basis" in text.lower():
        lacking = re.search(r"not found for (\S+) in (\S+)", text) or _lacking_element(text, options)
        if lacking:  # a known basis without functions for this element
            return f"option 'basis': basis {lacking.group(2)!r} has no functions for {lacking.group(1)}"
        return f"option 'basis': {_unknown_name(text, options['basis'], 'basis')}"
    symbol = re.search(r"Unsupported atom symbol (\S+)", text)
    if symbol:
        return f"option 'atom': unknown element {symbol.group(1).title()!r} in {str(options['atom'])[:60]!r}"
    electrons = re.search(r"Electron number (\d+) and spin (\d+) are not consistent", text)
    if electrons:
        n, spin = int(electrons.group(1)), int(electrons.group(2))
        fix = "set spin = 1 and method = 'uhf' or 'rohf'" if n % 2 else "set spin = 0 (or 2, ...)"
        return (f"option 'spin': {_electrons(n)} (charge {options['charge']}) cannot have spin = {spin} "
                f"(2S = N_alpha - N_beta must be {'odd' if n % 2 else 'even'}); {fix}")
    if isinstance(exc, AssertionError):
        return _count_problem(options)
    atom = str(options["atom"])[:60]
    return f"option 'atom': PySCF cannot read {atom!r}: {text[:120] or type(exc).__name__}"


def _lacking_element(text: str, options: dict[str, Any]) -> re.Match[str] | None:
    """PySCF 2.8 says only "Basis data not found": find the element a known basis lacks, worded as 2.14
    does."""
    if "data not found" not in text:
        return None
    from pyscf import gto

    try:
        symbols = [label for label, _ in gto.format_atom(options["atom"], unit=options["unit"])]
    except Exception:  # noqa: BLE001 - the atoms themselves are the problem: reported elsewhere
        return None
    for symbol in dict.fromkeys(symbols):
        name = _basis_name(options["basis"], symbol, gto.mole._std_symbol(symbol))
        try:
            gto.basis.load(name, gto.mole._std_symbol(symbol))
        except Exception:  # noqa: BLE001 - any failure to load means no functions for it
            return re.search(r"for (\S+) in (\S+)", f"for {symbol} in {name}")
    return None


def _count_problem(options: dict[str, Any]) -> str:
    """Too few electrons for the charge or the spin (PySCF only asserts)."""
    from pyscf import gto

    try:
        n = sum(gto.charge(label) for label, _ in gto.format_atom(options["atom"], unit=options["unit"]))
    except Exception:  # noqa: BLE001 - the molecule built once already; this only words the message
        return f"option 'spin': spin = {options['spin']} is more than the number of electrons allows"
    n -= options["charge"]
    if n < 0:
        return f"option 'charge': charge = {options['charge']} leaves {n} electrons"
    core = " before the ECP's core electrons are removed" if options["ecp"] else ""
    return f"option 'spin': spin = {options['spin']} needs at least that many electrons; there are {n}{core}"


def _electrons(n: int) -> str:
    return f"{n} electron{'s' * (n != 1)}"


def _unknown_name(text: str, given: Any, what: str) -> str:
    """``basis 'cc-pvdzz' is not known to PySCF (did you mean 'ccpvdz'?)``."""
    from pyscf.gto import basis

    names = [given] if isinstance(given, str) else list((given or {}).values())
    named = [n for n in names if isinstance(n, str) and n.lower() in text.lower()]
    bad = named[0] if named else (names[0] if names else "")
    normal = str(bad).lower().replace("-", "").replace("_", "")
    hint = difflib.get_close_matches(normal, list(basis.ALIAS), n=1)
    return f"{what} {bad!r} is not known to PySCF" + (f" (did you mean {hint[0]!r}?)" if hint else "")


# ------------------------------------------------------------------ sampling guards
def check_sampling(step: Step, writer: Writer, where: str) -> None:
    """Refuse a sampling total far beyond any plausible run unless ``max_core_hours`` caps it."""
    if step.max_core_hours is not None:
        return
    for key in writer.sampling:
        value = getattr(writer, key, None)
        limit = PLAUSIBLE.get(key)
        if isinstance(value, int) and limit is not None and value > limit:
            hours = value * FASTEST_SECONDS[key] / 3600
            raise OptionError(f"{where}: option '{key}': {value} is far beyond any plausible run "
                              f"(> {limit:g}); even at {FASTEST_SECONDS[key]:g} s each it costs "
                              f"≥ {hours:.3g} core-hours. Lower it, or set max_core_hours to allow it")


def check_step(step: Step, writer: Writer, where: str) -> None:
    """The checks of one step that need its built Writer."""
    check_sampling(step, writer, where)
    if step.code == "pyscf":
        check_molecule(writer, where)


# ------------------------------------------------------------------ programs
def check_programs(plan: Plan) -> None:
    """The program of every step that runs on this machine exists (once per code/method/options)."""
    profiles = plan.profiles()
    seen: set[str] = set()
    where_file = f"{plan.source}: " if plan.source else ""
    for job in plan.jobs:
        for step in job.steps:
            profile = profiles.get(step.runner)
            key = json.dumps([step.code, step.method, step.options.get("python")], default=str)
            if profile is None or not profile.runs_here or key in seen:
                continue
            seen.add(key)
            where = f"{where_file}job {job.id!r}, step {step.name!r}"
            writer = step.writer(where)
            try:
                writer.check_program()
            except AutogenError as exc:
                raise PlanError(f"{where}: {exc}") from None
