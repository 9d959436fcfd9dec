"""Preflight of a PySCF step: its molecule must build before anything runs.

Every basis and ECP name resolves for every element, the atoms parse, and the electron count fits the
spin and the method. PySCF's many kinds of complaint each become one line ``option 'key': what is wrong``;
:meth:`SCFWriter.preflight <autogenv2.codes.pyscf.writer.SCFWriter.preflight>` prefixes the job and step.
"""
from __future__ import annotations

import difflib
import io
import json
import re
import warnings
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from ...errors import OptionError

NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_MOLECULES: dict[str, str | None] = {}
"""Molecule checks already made in this process: options (JSON) -> error message or None."""
KEYS = ("atom", "unit", "basis", "ecp", "charge", "spin", "method")
"""The SCF options that decide whether the molecule builds."""


def check_molecule(options: dict[str, Any], where: str) -> None:
    """Build the PySCF molecule of these SCF options once (no integrals): names, parsing, electrons, spin.

    ``options`` holds :data:`KEYS`; a problem is an OptionError ``where: option 'key': ...``.
    """
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
